"""The full-run log scan (tests/support/log_scan.py) finds what it is there to find."""

from __future__ import annotations

import json

from tests.support.log_scan import problems


def test_the_scan_names_a_phone_number_a_secret_and_a_line_that_is_not_json(tmp_path):
    log = tmp_path / "run.jsonl"
    lines = [
        json.dumps({"message": "ZenoPay create for 07*****987 failed"}),  # masked: fine
        json.dumps({"message": "payer +255754321987 paid"}),
        json.dumps({"message": "key s3cr3t-value-0123456789 leaked"}),
        "plain text line",
        json.dumps({"message": "tx 0xab0754321987cd and deposit=3f2b8c1e-9a4d"}),  # not a phone
    ]
    log.write_text("\n".join(lines) + "\n")

    found = problems(log, ["s3cr3t-value-0123456789"])

    assert [p.split(" ", 2)[:2] for p in found] == [["line", "2"], ["line", "3"], ["line", "4"]]
    assert "full phone number" in found[0] and "secret" in found[1] and "JSON" in found[2]
