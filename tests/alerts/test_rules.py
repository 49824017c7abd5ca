from __future__ import annotations

import re

import pytest

from keelwatch.alerts import RuleError, load_rules, parse_rules

GOOD = {"name": "r", "metric": "drift_share", "threshold": 0.3, "webhook": "http://x/h"}


def test_defaults_and_matching():
    (rule,) = parse_rules({"rules": [dict(GOOD, model="churn*")]})
    assert rule.op == ">=" and rule.action == "retrain" and rule.cooldown_s == 3600
    assert rule.matches("churn-v2") and not rule.matches("fraud")
    assert rule.fires(0.3) and not rule.fires(0.29)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "accuracy"}, "rule 'r'.metric: must be one of"),
        ({"op": "=="}, "rule 'r'.op: must be one of"),
        ({"threshold": "high"}, "rule 'r'.threshold: must be a number"),
        ({"webhook": "ftp://x"}, "rule 'r'.webhook: must be an http(s) URL"),
        ({"action": "page"}, "rule 'r'.action: must be one of"),
        ({"cooldown_s": -1}, "rule 'r'.cooldown_s: must be >= 0"),
        ({"colour": "red"}, "rules[0].colour: unknown field"),
    ],
)
def test_bad_rules_name_the_field(change, message):
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rules({"rules": [dict(GOOD, **change)]})


def test_missing_field_and_duplicates():
    with pytest.raises(RuleError, match=r"rules\[0\]\.webhook: is required"):
        parse_rules({"rules": [{"name": "r", "metric": "drift_share", "threshold": 1}]})
    with pytest.raises(RuleError, match=r"'r'\.name: is used more than once"):
        parse_rules({"rules": [GOOD, GOOD]})


def test_rules_file_errors(tmp_path):
    with pytest.raises(RuleError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_rules(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(RuleError, match="must be a mapping with a 'rules' list"):
        load_rules(bad)
    good = tmp_path / "rules.yaml"
    good.write_text(
        "rules:\n  - {name: r, metric: max_score, threshold: 2, webhook: 'http://h/x'}\n"
    )
    assert load_rules(good)[0].metric == "max_score"
