import json

from helpers import bench


def test_record_appends_a_json_line_and_the_table_keeps_the_newest(tmp_path, capsys):
    results, table = tmp_path / "r.jsonl", tmp_path / "B.md"
    table.write_text(f"# B\n\nintro\n\n{bench.BEGIN}\nold\n{bench.END}\n\nfooter\n")
    bench.record("swap train", {"batch": 32}, [2.0, 1.0, 3.0], items_per_run=64, unit="img/s", results=results)
    bench.record("swap train", {"batch": 32}, [1.0, 1.0, 1.0], items_per_run=64, unit="img/s", results=results)
    bench.record("swap train", {"batch": 64}, [4.0], results=results)
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["median_s"] == 2.0 and line["throughput"] == 32.0 and line["device"].startswith("CPU")
    bench.write_table(results, table)
    text = table.read_text()
    assert "intro" in text and "footer" in text and "old" not in text
    rows = [r for r in text.splitlines() if r.startswith("| swap train")]
    assert len(rows) == 2 and "64.0 img/s" in rows[0]


def test_time_runs_counts_only_timed_calls():
    calls = []
    times = bench.time_runs(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(times) == 3 and len(calls) == 5


def test_a_scripts_own_block_is_replaced_in_place_or_appended_once(tmp_path):
    table = tmp_path / "B.md"
    table.write_text(f"# B\n\nintro\n\n{bench.BEGIN}\nrows\n{bench.END}\n\nfooter\n")
    bench.write_block("<!-- x:begin -->", "<!-- x:end -->", "first", table)
    bench.write_block("<!-- x:begin -->", "<!-- x:end -->", "second", table)
    text = table.read_text()
    assert text.count("<!-- x:begin -->") == 1 and "second" in text and "first" not in text
    assert text.index("footer") < text.index("second")  # a new block goes at the end
    bench.write_block(bench.BEGIN, bench.END, "new rows", table)
    text = table.read_text()
    assert "new rows" in text and "\nrows\n" not in text and text.index("intro") < text.index("new rows") < text.index("footer")
