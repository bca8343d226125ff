"""`wanying interpret mark|ocr` as operators run them."""
import json

from typer.testing import CliRunner

from wanying.cli import app

runner = CliRunner()


def test_mark_prints_one_json_line_per_span_with_the_agreed_keys_first(tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("检查所见：\n未见明显骨折，右肺结节。\n诊断意见：肝血管瘤可能。\n", encoding="utf-8")
    result = runner.invoke(app, ["interpret", "mark", str(report)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["term"] for r in rows] == ["骨折", "肺结节", "肝血管瘤"]
    assert list(rows[0])[:6] == ["start", "end", "term", "level", "negated", "uncertain"]
    assert (rows[0]["negated"], rows[1]["negated"], rows[2]["uncertain"]) == (True, False, True)
    text = report.read_text(encoding="utf-8")
    assert all(text[r["start"]:r["end"]] == r["term"] for r in rows)


def test_ocr_rejects_a_file_that_is_not_an_image(tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"not an image")
    result = runner.invoke(app, ["interpret", "ocr", str(bad)])
    assert result.exit_code == 2 and "无法识别图片" in result.output
