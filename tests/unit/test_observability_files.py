"""The Prometheus config, alert rules and Grafana dashboard under deploy/ are code: these tests keep
them consistent with the metrics the code really exports (workers/metrics.py), with
docker-compose.yml, and valid for promtool and Grafana.

The central check: every metric a PromQL expression of the dashboard or the rules names must be a
series some Vigil process exposes. A panel on a misspelt or removed metric otherwise shows "No
data" for ever and an alert on one never fires, and nothing says so.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from catalog.figures import CatalogFigures
from store.local import LocalFolderStore
from workers.metrics import InstrumentedStore, Metrics, sample_names
from workers.monitor import CatalogCollector, KafkaCollector, KafkaFigures, PartitionLag

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "vigil.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "vigil_test.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "vigil.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "vigil.yml"

DATASOURCE_UID = "prometheus"  # the provisioned one
DASHBOARD_DATASOURCE = "${datasource}"  # the dashboard's variable: that one by default
METRICS_PORT = 9464
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself for every target
GRAFANA_SCHEMA_VERSIONS = range(39, 42)  # Grafana 11.0 (39) to 12.x (41)
GRID_COLUMNS = 24


# -- what the code exports ----------------------------------------------------------------------


def _stored_names(registry: CollectorRegistry, names: set[str]) -> set[str]:
    """``names`` without the bare names of counters and histograms: ``sample_names`` lists a
    counter's family name (``vigil_uploads``) but Prometheus only ever stores its samples
    (``vigil_uploads_total``), so a query on the bare name would show nothing."""
    bare = {f.name for f in registry.collect() if f.type in ("counter", "histogram", "summary")}
    return names - bare


def exported_names() -> set[str]:
    metrics = Metrics()
    names = _stored_names(metrics.registry, metrics.names())
    return names | monitor_names() | PROMETHEUS_OWN


def monitor_names() -> set[str]:
    """What ``vigil monitor`` serves: the catalogue's figures and Kafka's, one per deployment."""
    at = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    catalog = CatalogFigures(
        recordings_by_status={"complete": 3, "segmenting": 1},
        uploads_by_device={"BC-0042": 3, "BC-0043": 1},
        last_upload_by_device={"BC-0042": (at, True), "BC-0043": (at, False)},
        stored_bytes={"originals": 1000, "derived": 400},
        footage_seconds=120.0,
        uncategorised=1,
        unlinked=2,
        verification_failures=0,
        late_uploads=1,
        late_uploads_recent=0,
        retention_ending_7d=0,
        ledger_pending=5,
        uploads_recent_by_device={"BC-0042": 1, "BC-0043": 0},
        oldest_unsegmented_s=30.0,
    )
    kafka = KafkaFigures(
        lags=[PartitionLag("vigil.phash", "vigil.segment.stored", 0, 7)], dead_letter_messages=0
    )
    registry = CollectorRegistry()
    registry.register(CatalogCollector(lambda: catalog))
    registry.register(KafkaCollector(lambda: kafka))
    return _stored_names(registry, sample_names(registry))


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return exported_names()


# -- metric names in PromQL ---------------------------------------------------------------------

_NAME_MATCHER = re.compile(r"""__name__\s*(=~|!=|!~|=)\s*(["'`])(.*?)\2""")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")  # $__rate_interval, ${stage}
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")  # [5m], subqueries [10m:1m]
_LABEL_LIST = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
# An identifier not inside a number or a duration (1e3, 0x1f, 1d): nothing word-like before it.
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "atan2", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana's $variables allowed)."""
    names: set[str] = set()
    for op, _, value in _NAME_MATCHER.findall(expr):
        names.add(value if op == "=" else f"{{__name__{op}{value!r}}}")  # a regex: not checkable
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    for identifier, call in _IDENTIFIER.findall(text):
        if call or identifier.lower() in _KEYWORDS:
            continue  # a function or aggregation (followed by "("), or a keyword
        names.add(identifier)
    return names


def unknown_metrics(exprs: dict[str, str], known: set[str]) -> dict[str, set[str]]:
    """Each expression (by where it is) that names a metric not in ``known``, with those names."""
    return {
        where: missing for where, expr in exprs.items() if (missing := metric_names(expr) - known)
    }


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job="vigil"} == 0', {"up"}),
        (
            "sum by (stage) (rate(vigil_stage_footage_seconds_total[5m]))",
            {"vigil_stage_footage_seconds_total"},
        ),
        (
            "sum(rate(vigil_errors_total{stage=~\"seg.*\", kind!='Timeout'}[$__rate_interval]))"
            " by (stage, kind) * 60",
            {"vigil_errors_total"},
        ),
        (
            "histogram_quantile(0.99, sum without (instance, job) "
            "(rate(vigil_stage_duration_seconds_bucket[5m])))",
            {"vigil_stage_duration_seconds_bucket"},
        ),
        (
            "deriv(sum by (group) (vigil_kafka_consumer_lag)[10m:1m]) * 60 > 0\n"
            "and sum by (group) (vigil_kafka_consumer_lag) > 0",
            {"vigil_kafka_consumer_lag"},
        ),
        (
            'label_replace(sum by (group) (vigil_kafka_consumer_lag) > 0, "stage", "$1", '
            '"group", ".*\\\\.([^.]+)") unless on (stage) '
            "sum by (stage) (increase(vigil_stage_messages_total[30m])) > 0",
            {"vigil_kafka_consumer_lag", "vigil_stage_messages_total"},
        ),
        (
            'time() - vigil_device_last_upload_timestamp_seconds{in_service="true"} > 24 * 3600',
            {"vigil_device_last_upload_timestamp_seconds"},
        ),
        (
            "vigil_catalog_stored_bytes - vigil_catalog_stored_bytes offset 1d",
            {"vigil_catalog_stored_bytes"},
        ),
        (
            "sum by (kind) (rate(vigil_store_errors_total[5m])) / ignoring (kind) group_left "
            "sum(rate(vigil_store_request_duration_seconds_count[5m])) > bool 1e-3",
            {"vigil_store_errors_total", "vigil_store_request_duration_seconds_count"},
        ),
        ("count(x > 86400) or vector(0)", {"x"}),
        ('{__name__="vigil_ledger_size", job="vigil"}', {"vigil_ledger_size"}),
        ("absent(nan_count) or Inf", {"nan_count"}),
    ],
)
def test_metric_names_are_extracted_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_made_up_metric_is_rejected(exported: set[str]) -> None:
    exprs = {
        "made up": "sum by (stage) (rate(vigil_stage_made_up_total[5m]))",
        "bare counter name": "rate(vigil_stage_footage_seconds[5m])",  # never stored as such
        "real": "sum by (stage) (rate(vigil_stage_footage_seconds_total[5m]))",
        "regex name": '{__name__=~"vigil_.*"}',
    }
    assert unknown_metrics(exprs, exported) == {
        "made up": {"vigil_stage_made_up_total"},
        "bare counter name": {"vigil_stage_footage_seconds"},
        "regex name": {"{__name__=~'vigil_.*'}"},
    }


def test_a_dashboard_panel_on_a_made_up_metric_is_rejected(exported: set[str]) -> None:
    dashboard = copy.deepcopy(load_dashboard())
    rows = [p for p in dashboard["panels"] if p["type"] == "row" and p.get("collapsed")]
    assert rows, "the dashboard has a collapsed row (its panels are nested)"
    made_up = copy.deepcopy(rows[0]["panels"][0])
    made_up["title"] = "Made up"
    made_up["targets"][0]["expr"] = "sum(rate(vigil_frames_dropped_total[5m]))"
    rows[0]["panels"].append(made_up)
    unknown = unknown_metrics(dashboard_exprs(dashboard), exported)
    assert list(unknown.values()) == [{"vigil_frames_dropped_total"}]
    assert "Made up" in next(iter(unknown))


def test_the_exported_names_are_the_series_prometheus_stores(exported: set[str]) -> None:
    assert {
        "vigil_stage_footage_seconds_total",
        "vigil_stage_duration_seconds_bucket",
        "vigil_end_to_end_seconds_count",
        "vigil_kafka_consumer_lag",
        "vigil_kafka_up",
        "vigil_dead_letter_queue_messages",
        "vigil_catalog_up",
        "vigil_catalog_uploads_total",
        "vigil_device_last_upload_timestamp_seconds",
        "vigil_ledger_pending_events",
        "up",
    } <= exported
    assert "vigil_stage_footage_seconds" not in exported
    assert "vigil_stage_duration_seconds" not in exported


# -- the dashboard ------------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_exprs(dashboard: dict[str, Any]) -> dict[str, str]:
    return {
        f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}": target[
            "expr"
        ]
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    }


def test_every_dashboard_expression_names_only_exported_metrics(exported: set[str]) -> None:
    exprs = dashboard_exprs(load_dashboard())
    assert len(exprs) >= 20
    for where, expr in exprs.items():
        assert metric_names(expr), f"{where}: no metric found in {expr!r}"
    assert unknown_metrics(exprs, exported) == {}


def test_the_dashboard_is_valid_grafana() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["schemaVersion"] in GRAFANA_SCHEMA_VERSIONS
    assert dashboard.get("id") is None  # provisioned: Grafana assigns the database id
    panels = list(all_panels(dashboard["panels"]))
    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels:
        where = f"panel {panel.get('id')}"
        assert isinstance(panel.get("type"), str) and panel["type"], where
        assert isinstance(panel.get("title"), str) and panel["title"].strip(), where
        grid = panel.get("gridPos")
        assert isinstance(grid, dict), where
        assert all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")), where
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0 and grid["y"] >= 0, where
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, where
        if panel["type"] == "row":
            assert grid["w"] == GRID_COLUMNS, where
            if not panel.get("collapsed"):
                assert panel.get("panels", []) == [], f"{where}: an open row nests no panels"
            continue
        assert panel.get("datasource") == {"type": "prometheus", "uid": DASHBOARD_DATASOURCE}, where
        targets = panel.get("targets")
        assert targets, f"{where}: no query"
        ref_ids = [t.get("refId") for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in targets:
            assert target.get("datasource") == panel["datasource"], where
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), where


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_the_dashboard_panels_do_not_overlap() -> None:
    top = load_dashboard()["panels"]
    layouts = [top] + [row["panels"] for row in top if row["type"] == "row" and row["panels"]]
    for layout in layouts:
        for i, a in enumerate(layout):
            for b in layout[i + 1 :]:
                assert not _overlap(a["gridPos"], b["gridPos"]), (a["title"], b["title"])


def test_the_dashboard_shows_what_operations_need() -> None:
    named = set().union(*map(metric_names, dashboard_exprs(load_dashboard()).values()))
    assert {
        "vigil_stage_footage_seconds_total",  # throughput, x realtime
        "vigil_stage_bytes_total",
        "vigil_kafka_consumer_lag",
        "vigil_stage_duration_seconds_bucket",
        "vigil_end_to_end_seconds_bucket",
        "vigil_errors_total",
        "vigil_retries_total",
        "vigil_dead_letter_queue_messages",
        "vigil_catalog_stored_bytes",
        "vigil_gaps_total",
        "vigil_catalog_verification_failures",
        "vigil_catalog_late_uploads_recent",
        "vigil_ffmpeg_speed_ratio_bucket",
        "vigil_store_request_duration_seconds_bucket",
        "vigil_store_errors_total",
        "vigil_ledger_pending_events",
        "vigil_device_last_upload_timestamp_seconds",
        "vigil_catalog_uploads_recent",  # per device, from the catalogue: first uploads count
        "vigil_catalog_received_total",
        "vigil_catalog_oldest_unsegmented_seconds",
        "vigil_catalog_recordings",
        "process_resident_memory_bytes",  # each process's memory and CPU
        "process_cpu_seconds_total",
    } <= named


def _variable_selector_names(definition: str) -> set[str]:
    """The metric names of a ``label_values({__name__=~"a|b", ...}, label)`` variable query."""
    (selector,) = re.findall(r'__name__=~"([\w|]+)"', definition)
    return set(selector.split("|"))


def test_the_dashboard_has_datasource_job_and_instance_variables(exported: set[str]) -> None:
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "instance"]  # in the order they depend
    source = variables["datasource"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    for label in ("job", "instance"):
        variable = variables[label]
        assert variable["type"] == "query", label
        assert variable["datasource"] == {"type": "prometheus", "uid": DASHBOARD_DATASOURCE}
        assert variable["includeAll"] and variable["multi"], label
        assert variable["current"]["value"] == ["$__all"], label
        definition = variable["definition"]
        assert variable["query"]["query"] == definition, label
        assert re.fullmatch(rf"label_values\(\{{.*\}}, {label}\)", definition), definition
        # Workers, the API and the ledger export the stage message counter at 0 from their start,
        # the monitor its catalogue's state: every Vigil process is found before it did anything.
        assert _variable_selector_names(definition) == {
            "vigil_stage_messages_total",
            "vigil_catalog_up",
        }, label
    assert 'job=~"$job"' in variables["instance"]["definition"]  # the instances of those jobs
    assert variables["instance"]["allValue"] == ".*"
    started = {name for family in Metrics().registry.collect() for name, *_ in family.samples}
    assert "vigil_stage_messages_total" in started
    assert "vigil_catalog_up" in monitor_names()


def test_every_query_follows_the_job_and_per_process_figures_the_instance() -> None:
    """A process's own figures follow both variables; the monitor's (the catalogue's, Kafka's)
    are the deployment's, so they follow the job only: one instance chosen must not blank them."""
    monitor = monitor_names()
    exprs = dashboard_exprs(load_dashboard())
    for where, expr in exprs.items():
        for name in metric_names(expr):
            uses = re.findall(rf"(?<![\w:]){name}(?![\w:])(\{{[^{{}}]*\}})?", expr)
            assert uses, (where, name)
            for matchers in uses:
                assert 'job=~"$job"' in matchers, (where, name)
                per_process = name not in monitor
                assert ('instance=~"$instance"' in matchers) == per_process, (where, name)


# -- Grafana provisioning and compose -----------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), path
    return loaded


def compose_services() -> dict[str, dict[str, Any]]:
    services = load_yaml(ROOT / "docker-compose.yml")["services"]
    assert isinstance(services, dict)
    return services


def mounts(service: str) -> dict[str, str]:
    """Container path -> repository source of a service's bind mounts."""
    found: dict[str, str] = {}
    for volume in compose_services()[service].get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith("."):
            found[target] = source
    return found


def test_grafana_provisions_the_datasource_the_dashboard_uses() -> None:
    sources = load_yaml(DATASOURCES)["datasources"]
    (source,) = (s for s in sources if s["uid"] == DATASOURCE_UID)
    assert source["type"] == "prometheus"
    assert source["isDefault"]  # what the dashboard's $datasource picks unless told otherwise
    assert source["url"] == "http://prometheus:9090"
    assert "9090" in compose_services()["prometheus"]["expose"]  # inside the network only


def test_grafana_loads_the_dashboards_from_where_compose_mounts_them() -> None:
    grafana = mounts("grafana")
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert (ROOT / grafana[path]).resolve() == DASHBOARD.parent
    provisioning = PurePosixPath("/etc/grafana/provisioning")
    for kind, file in (("datasources", DATASOURCES), ("dashboards", DASHBOARD_PROVIDERS)):
        assert (ROOT / grafana[str(provisioning / kind)]).resolve() == file.parent
    home = compose_services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home) == PurePosixPath(path) / DASHBOARD.name


# -- Prometheus config --------------------------------------------------------------------------


def vigil_job() -> dict[str, Any]:
    jobs: list[dict[str, Any]] = load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
    (job,) = (j for j in jobs if j["job_name"] == "vigil")
    return job


def test_prometheus_scrapes_every_vigil_service_by_dns() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    services = compose_services()
    vigil = {
        name
        for name, service in services.items()
        if service.get("image") == "vigil:latest" and not service.get("profiles")
    }
    assert {"segment", "phash", "finalise", "ledger", "monitor"} <= vigil
    job = vigil_job()
    discovered: set[str] = set()
    for sd in job["dns_sd_configs"]:
        assert sd["type"] == "A" and sd["port"] == METRICS_PORT
        discovered.update(sd["names"])
    assert discovered == vigil
    for name in vigil:
        assert int(services[name]["environment"]["VIGIL_METRICS_PORT"]) == METRICS_PORT, name
        assert services[name]["environment"]["VIGIL_METRICS_BIND"] == "0.0.0.0", name
    (relabel,) = (r for r in job["relabel_configs"] if r.get("target_label") == "service")
    assert relabel["source_labels"] == ["__meta_dns_name"]
    assert re.fullmatch(relabel["regex"], "phash")


def test_prometheus_loads_the_rules_compose_mounts() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    prometheus = mounts("prometheus")
    container_config = PurePosixPath("/etc/prometheus/prometheus.yml")
    assert (ROOT / prometheus[str(container_config)]).resolve() == PROMETHEUS_CONFIG
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        assert not PurePosixPath(rule_file).is_absolute()  # same layout in repo and container
        assert (PROMETHEUS_DIR / rule_file).resolve() == RULES
        in_container = str(container_config.parent / rule_file)
        assert (ROOT / prometheus[in_container]).resolve() == RULES


# -- alert rules --------------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule
    ]


def test_every_rule_expression_names_only_exported_metrics(exported: set[str]) -> None:
    exprs = {
        f"rule {rule.get('alert') or rule.get('record')}": rule["expr"]
        for group in load_yaml(RULES)["groups"]
        for rule in group["rules"]
    }
    assert len(exprs) >= 8
    for where, expr in exprs.items():
        assert metric_names(expr), f"{where}: no metric found"
    assert unknown_metrics(exprs, exported) == {}


def test_the_rule_tests_feed_exported_metrics(exported: set[str]) -> None:
    for test in load_yaml(RULE_TESTS)["tests"]:
        for series in test.get("input_series", []):
            assert metric_names(series["series"]) <= exported, series["series"]


def test_every_alert_says_how_bad_and_what_to_do() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        for annotation in ("summary", "description"):
            assert len(rule["annotations"][annotation].split()) >= 4, (rule["alert"], annotation)


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in load_yaml(RULE_TESTS)["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested not firing"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_the_alerts_operations_need_exist() -> None:
    named = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert {
        "vigil_kafka_consumer_lag",
        "vigil_dead_letter_queue_messages",
        "vigil_device_last_upload_timestamp_seconds",
        "vigil_catalog_late_uploads_recent",
        "vigil_catalog_verification_failures",
        "up",
        "vigil_catalog_up",
        "vigil_kafka_up",
        "vigil_catalog_oldest_unsegmented_seconds",
        "vigil_c2pa_manifests_total",
    } <= named


_COUNTED = re.compile(r"\b(?:rate|irate|increase)\(\s*(\w+_total)\s*(\{[^{}]*\})?")


def test_every_counter_a_rate_or_an_increase_reads_exists_from_the_start(tmp_path: Path) -> None:
    """``increase()`` and ``rate()`` see nothing of a series' first sample: a counter that
    appears with its first event, at 1, is never an increase. So every counter the rules and the
    dashboard take a rate or an increase of must be exported at 0 (with the label values the
    expression picks) from the start of the process that counts it: a fresh process's metrics,
    once told its devices and witnesses and given its store, and an empty catalogue's figures."""
    metrics = Metrics()
    metrics.devices_known(["BC-0042"])
    metrics.witnesses_known(["court.example/w1"])
    InstrumentedStore(LocalFolderStore(tmp_path), metrics, "local")
    empty = CatalogFigures(
        recordings_by_status={}, uploads_by_device={}, last_upload_by_device={},
        stored_bytes={"originals": 0, "derived": 0}, footage_seconds=0.0, uncategorised=0,
        unlinked=0, verification_failures=0, late_uploads=0, late_uploads_recent=0,
        retention_ending_7d=0, ledger_pending=0,
    )  # fmt: skip
    monitor = CollectorRegistry()
    monitor.register(CatalogCollector(lambda: empty))
    samples = [
        (sample.name, sample.labels, sample.value)
        for registry in (metrics.registry, monitor)
        for family in registry.collect()
        for sample in family.samples
    ]
    exprs = dashboard_exprs(load_dashboard())
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            exprs[f"rule {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    read: set[str] = set()
    for where, expr in exprs.items():
        for name, matchers in _COUNTED.findall(expr):
            picked = dict(re.findall(r'(\w+)="([^"]*)"', matchers))  # job, instance: =~
            found = [v for n, ls, v in samples if n == name and picked.items() <= ls.items()]
            assert found, f"{where}: {name}{matchers} does not exist from the start"
            if not name.startswith("process_"):
                assert set(found) == {0.0}, (where, name)
            read.add(name)
    assert {
        "vigil_dead_letters_total",
        "vigil_ledger_witness_failures_total",
        "vigil_stage_messages_total",
        "vigil_errors_total",
        "vigil_store_errors_total",
        "vigil_ffmpeg_runs_total",
        "vigil_catalog_received_total",
    } <= read


# -- promtool -----------------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing: the test command installs Debian's prometheus")
        pytest.skip("promtool missing (install Debian's prometheus package)")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["check", "config", str(PROMETHEUS_CONFIG)],
        ["check", "rules", str(RULES)],
        ["test", "rules", str(RULE_TESTS)],
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts(args: list[str]) -> None:
    result = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1d"}
GRAFANA_VARIABLES = {"$job": "(vigil)", "$instance": ".*"}  # as Grafana fills in "All"


def test_the_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel query (as a recording rule, Grafana's intervals filled in)."""
    rules = []
    for i, expr in enumerate(dashboard_exprs(load_dashboard()).values()):
        for variable, value in (GRAFANA_INTERVALS | GRAFANA_VARIABLES).items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
