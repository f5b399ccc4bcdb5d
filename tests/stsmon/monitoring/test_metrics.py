"""The local CloudWatch: data points and alarm evaluation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from stsmon.errors import StsmonError
from stsmon.monitoring import metrics
from stsmon.state import StateDir

DIMS = {"Endpoint": "ep", "MonitoringSchedule": "sch"}


def datum(name, value, stamp, dims=DIMS):
    return {"MetricName": name, "Timestamp": stamp, "Value": value, "Unit": "None",
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}


def at(hour, minute=0):
    return datetime(2026, 11, 27, hour, minute, tzinfo=timezone.utc)


def definition(**over):
    base = {"Namespace": "ns", "MetricName": "accuracy", "Dimensions": [{"Name": k, "Value": v} for k, v in DIMS.items()],
            "Statistic": "Average", "Period": "3600", "EvaluationPeriods": "1", "Threshold": "0.8",
            "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "missing"}
    base.update(over)
    return base


def test_store_filters_by_metric_and_exact_dimensions_and_ignores_repeats(tmp_path):
    store = metrics.MetricStore(StateDir(tmp_path))
    assert store.put("ns", [datum("accuracy", 0.9, "2026-11-27T13:00:00Z"), datum("f1", 0.7, "2026-11-27T13:00:00Z"),
                            datum("accuracy", 0.1, "2026-11-27T13:00:00Z", {"Endpoint": "other"})], source="e1") == 3
    assert store.put("ns", [datum("accuracy", 0.5, "2026-11-27T14:00:00Z")], source="e1") == 0  # same source
    assert store.put("ns", [datum("accuracy", float("nan"), "2026-11-27T14:00:00Z")], source="e2") == 0
    points = store.points("ns", "accuracy", DIMS)
    assert [(p.value, p.timestamp) for p in points] == [(0.9, at(13))]
    assert store.namespaces() == ["ns"]


@pytest.mark.parametrize(
    "points, over, state",
    [  # points: (hour, minute, value); evaluated at 14:00 (the period [14:00, 15:00) is the last)
        ([(14, 0, 0.9)], {}, "OK"),
        ([(14, 0, 0.7)], {}, "ALARM"),
        ([(13, 0, 0.7)], {}, "ALARM"),  # a real point in the evaluation range counts, however old in it
        ([(13, 0, 0.7), (14, 0, 0.9)], {}, "OK"),  # the most recent real point is the one evaluated
        ([(11, 0, 0.7)], {}, "INSUFFICIENT_DATA"),  # older than the range (12:00, 13:00, 14:00)
        ([(11, 0, 0.9)], {"TreatMissingData": "breaching"}, "ALARM"),
        ([], {"TreatMissingData": "notBreaching"}, "OK"),
        ([], {"TreatMissingData": "breaching"}, "ALARM"),
        ([(14, 0, 0.7), (14, 30, 0.9)], {}, "OK"),  # Average 0.8 is not < 0.8
        ([(14, 0, 0.7), (14, 30, 0.9)], {"Statistic": "Minimum"}, "ALARM"),
        ([(13, 0, 0.9), (14, 0, 0.2)], {"EvaluationPeriods": "2", "DatapointsToAlarm": "2"}, "OK"),  # 1 of 2
        ([(13, 0, 0.2), (14, 0, 0.3)], {"EvaluationPeriods": "2", "DatapointsToAlarm": "2"}, "ALARM"),
        ([(14, 0, 0.3)], {"EvaluationPeriods": "2", "DatapointsToAlarm": "2", "TreatMissingData": "breaching"}, "ALARM"),
    ],
)
def test_alarm_states(points, over, state):
    series = [metrics.Point("accuracy", DIMS, at(h, m), v, "None", "s") for h, m, v in points]
    result, reason, periods = metrics.evaluate(definition(**over), series, at(14), "OK")
    assert result == state, reason
    assert len(periods) == int(over.get("EvaluationPeriods", 1)) + metrics.EXTRA_PERIODS


# The two tables of "How alarm state is evaluated when data is missing", CloudWatch User Guide
# (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html; the same text
# in awsdocs/amazon-cloudwatch-user-guide, doc_source/AlarmThatSendsEmail.md at cd4004c): five data
# points retrieved, oldest first, "0" not breaching, "X" breaching, "-" missing; columns MISSING,
# IGNORE, BREACHING, NOT BREACHING ("keep": retain the current state).
CLOUDWATCH_TABLES = [
    # Datapoints to Alarm 3, Evaluation Periods 3
    (3, 3, "0 - X - X", ("OK", "OK", "OK", "OK")),
    (3, 3, "0 - - - -", ("OK", "OK", "OK", "OK")),
    (3, 3, "- - - - -", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    (3, 3, "0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (3, 3, "- - - - X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    # Datapoints to Alarm 2, Evaluation Periods 3
    (2, 3, "0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, 3, "0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, 3, "0 - X - -", ("OK", "OK", "ALARM", "OK")),
    (2, 3, "- - - - 0", ("OK", "OK", "ALARM", "OK")),
    (2, 3, "- - - - X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
]


@pytest.mark.parametrize("m, n, data, expected", CLOUDWATCH_TABLES)
def test_missing_data_as_the_cloudwatch_user_guide_tables(m, n, data, expected):
    values = {"0": 0.9, "X": 0.1}  # LessThanThreshold 0.8
    series = [metrics.Point("accuracy", DIMS, at(10 + i), values[c], "None", "s")
              for i, c in enumerate(data.split()) if c != "-"]
    assert n + metrics.EXTRA_PERIODS == len(data.split())  # the guide's 5 points for 3 periods
    for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected):
        for current in ("OK", "ALARM"):
            got, reason, _ = metrics.evaluate(
                definition(EvaluationPeriods=str(n), DatapointsToAlarm=str(m), TreatMissingData=treat), series, at(14), current)
            assert got == (current if want == "keep" else want), f"{treat}, state before {current}: {reason}"


def test_ignore_keeps_the_state_without_data():
    assert metrics.evaluate(definition(TreatMissingData="ignore"), [], at(14), "ALARM")[0] == "ALARM"


def test_evaluate_alarms_records_transitions_and_keeps_state_across_redeploys(tmp_path):
    state = StateDir(tmp_path)
    metrics.save_alarm(state, "a1", "arn:a1", definition(AlarmActions=["arn:topic"], OKActions=["arn:topic"]), now=at(12))
    store = metrics.MetricStore(state)
    store.put("ns", [datum("accuracy", 0.5, "2026-11-27T13:00:00Z")], source="x")
    (first,) = metrics.evaluate_alarms(state, at(13), now=at(13))
    assert (first["previous"], first["state"], first["changed"]) == ("INSUFFICIENT_DATA", "ALARM", True)
    assert "Threshold Crossed" in first["reason"]
    metrics.save_alarm(state, "a1", "arn:a1", definition(Threshold="0.4"), now=at(12))  # an update keeps the state
    record = metrics.list_alarms(state)[0]
    assert record["StateValue"] == "ALARM" and record["Definition"]["Threshold"] == "0.4"
    (second,) = metrics.evaluate_alarms(state, at(13), now=at(13))
    assert (second["state"], second["changed"]) == ("OK", True)
    history = metrics.list_alarms(state)[0]["History"]
    assert [(h["From"], h["To"]) for h in history] == [("INSUFFICIENT_DATA", "ALARM"), ("ALARM", "OK")]
    assert history[0]["Actions"] == ["arn:topic"]
    metrics.delete_alarm(state, "a1")
    assert metrics.list_alarms(state) == []


@pytest.mark.parametrize(
    "over, message",
    [
        ({"Metrics": [{"Id": "m1"}]}, "metric-math alarms"),
        ({"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}, "is not evaluated locally"),
        ({"ExtendedStatistic": "tm99"}, "ExtendedStatistic 'tm99'"),
        ({"ExtendedStatistic": "p120"}, "ExtendedStatistic 'p120'"),
        ({"Threshold": "high"}, "Threshold 'high' is not a number"),
        ({"TreatMissingData": "sometimes"}, "TreatMissingData 'sometimes'"),
        ({"MetricName": ""}, "MetricName is required"),
    ],
)
def test_alarm_properties_the_local_cloud_cannot_evaluate_are_refused(over, message):
    with pytest.raises(StsmonError, match=message):
        metrics.check_alarm_properties(definition(**over), "alarm")


def test_percentile_alarms_evaluate_the_percentile_of_the_period():
    points = [metrics.Point("ModelLatency", {}, datetime(2026, 11, 27, 12, 0, i % 60, tzinfo=timezone.utc), float(v),
                            "Microseconds", "test") for i, v in enumerate(range(1, 101))]  # 1..100 in one minute
    base = definition(MetricName="ModelLatency", Threshold="95", ComparisonOperator="GreaterThanThreshold",
                      EvaluationPeriods="1", Period="60")
    metrics.check_alarm_properties({**base, "ExtendedStatistic": "p99"}, "alarm")
    at_ = datetime(2026, 11, 27, 12, 0, 59, tzinfo=timezone.utc)
    state_p99, reason, periods = metrics.evaluate({**base, "ExtendedStatistic": "p99"}, points, at_, "OK")
    assert state_p99 == "ALARM" and periods[-1]["value"] == pytest.approx(99.01)
    state_p90, _, periods = metrics.evaluate({**base, "ExtendedStatistic": "p90"}, points, at_, "OK")
    assert state_p90 == "OK" and periods[-1]["value"] == pytest.approx(90.1)
