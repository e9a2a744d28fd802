"""Object stores: write-once buckets of originals and derived files (folder, S3 Object Lock),
their errors, and the retention and legal-hold types. Layer 2: imports only ``vigil_verify``.
"""
