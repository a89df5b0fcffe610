"""`GET /metrics` read by Prometheus' own parser (prometheus_client)."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(larder) -> dict:
    answer = requests.get(f"{larder.endpoint}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def value(families: dict, name: str, **labels) -> float:
    family = families[name]
    for sample in family.samples:
        if sample.name in (name, name + "_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return 0.0


def test_metrics_parse_and_count(larder, s3, bucket_name):
    before = scrape(larder)
    bucket = bucket_name("metrics")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="counted", Body=b"x" * 1000)
    s3.get_object(Bucket=bucket, Key="counted")["Body"].read()
    after = scrape(larder)

    for name in (
        "larder_requests",
        "larder_received_bytes",
        "larder_sent_bytes",
        "larder_request_duration_seconds",
        "larder_fsync_duration_seconds",
        "larder_open_connections",
        "larder_refused_connections",
        "larder_objects",
        "larder_stored_bytes",
        "larder_disk_free_bytes",
        "larder_clock_behind_seconds",
        "larder_live_links",
        "larder_link_uses",
    ):
        assert name in after, f"{name} missing from {sorted(after)}"
    assert after["larder_request_duration_seconds"].type == "histogram"
    assert value(after, "larder_requests", operation="PutObject", status="200") >= (
        value(before, "larder_requests", operation="PutObject", status="200") + 1
    )
    assert value(after, "larder_requests", operation="GetObject", status="200") >= 1
    assert value(after, "larder_received_bytes") >= value(before, "larder_received_bytes") + 1000
    assert value(after, "larder_sent_bytes") >= value(before, "larder_sent_bytes") + 1000
    assert value(after, "larder_objects") >= 1
    assert value(after, "larder_stored_bytes") >= 1000
    assert value(after, "larder_disk_free_bytes") > 0
    fsyncs = [s for s in after["larder_fsync_duration_seconds"].samples if s.name.endswith("_count")]
    assert fsyncs and fsyncs[0].value > 0, "a PUT syncs its blob and the index"


def test_a_bucket_named_metrics_is_still_a_bucket(larder, s3):
    s3.create_bucket(Bucket="metrics")
    s3.put_object(Bucket="metrics", Key="inside", Body=b"y")
    listed = s3.list_objects(Bucket="metrics")
    assert [item["Key"] for item in listed["Contents"]] == ["inside"]
    assert "larder_requests_total" in requests.get(f"{larder.endpoint}/_larder/metrics", timeout=10).text
