"""Supervision statistics over the catalogue (DOMAIN.md: "Statistics"), and the expected-
versus-recorded reconciliation of dispatches.

Every function takes the ``Catalog`` and returns frozen dataclasses; ``interfaces.cli.tables``
renders any list of them.

Time. A recording's place on the wall clock is its ``device_start`` corrected by the clock
offset measured at handover (``clock_offset_s``, as ``catalog.clock.wall_clock`` does);
without an offset, the device clock as it is; without a device start, ``received_at`` minus the
duration (which makes its upload delay zero, so such recordings are not counted in delays).
``FootageSpan.clock`` says which ("server", "device", "received"). A recording whose duration
is not known yet (not probed, or a live stream still running) has no span: reports list it as
unmeasured instead of guessing.

Periods. ``hours_recorded`` reports local days (agencies report in local time): ``since`` to
``until`` inclusive, in ``tz``. The other reports take a half-open ``[since, until)`` of aware
datetimes over ``received_at`` (footage that arrived in the period); ``local_period`` turns
local dates into one. The retention report and the reconciliation take their own times.

Footage whose retention ended by the catalogue's rules is status ``deleted``: the hours and the
upload delays still count it (it was recorded, and uploaded then), the share, gap and
retention reports do not (there is no footage left to categorise, link or keep).


Modules: ``base`` (errors, periods, local days), ``reports`` (1-3: hours, upload delays,
footage share), ``footage`` (4-5: gaps per recording, retention ending), ``csvin`` (CSV input),
``roster`` (officers and devices, imported), ``incidents`` (6: expected versus recorded).
"""
