"""Loading the calibration papers and reviews: bad records are reported by line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewer.calibration.data import load_papers, load_reviews
from reviewer.calibration.errors import CalibrationDataError, CalibrationError

FIXTURE = Path(__file__).resolve().parents[2] / "samples" / "calibration" / "iclr_small.jsonl"


def _paper(paper_id: str, **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": paper_id,
        "title": "T",
        "full_text": "Some text.\n# References\n[1] x",
        "references_offset": 11,
        "decision": "accept",
        "reviews": [{"rating": 6, "confidence": None, "text": None}],
    }
    return {**record, **changes}


def test_fixture_loads_with_labels_ratings_and_body_length() -> None:
    papers = load_papers(FIXTURE)
    assert len(papers) == 20 and sum(p.accepted for p in papers) == 8
    first = papers[0]
    assert first.ratings == [r.rating for r in first.reviews]
    assert first.body_chars == first.full_text.index("# References") < len(first.full_text)


def test_every_bad_line_is_reported_with_its_number(tmp_path: Path) -> None:
    lines = [
        json.dumps(_paper("a")),
        "{not json",
        json.dumps({k: v for k, v in _paper("b").items() if k != "decision"}),
        json.dumps(_paper("a")),
        "",
        json.dumps(_paper("c", reviews=[{"rating": 11}])),
        json.dumps(_paper("d/../e")),
        json.dumps(_paper("f")),
    ]
    path = tmp_path / "papers.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CalibrationDataError) as caught:
        load_papers(path)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 6", "line 7"]
    assert "decision" in problems[1] and "duplicate id 'a' (line 1)" in problems[2]
    assert "reviews.0.rating" in problems[3]
    assert "5 bad record(s)" in str(caught.value)


def test_missing_or_empty_data_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="no such data file"):
        load_papers(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(CalibrationError, match="no papers"):
        load_papers(tmp_path / "empty.jsonl")


def test_reviews_csv_reports_physical_line_numbers_across_multiline_fields(
    tmp_path: Path,
) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text(
        'paper_id,Summary,Overall\na,"two\nlines",6\nb,x,abc\nc,x,nan\nd,x,11\n,x,5\na,x,4\n'
    )
    with pytest.raises(CalibrationDataError) as caught:
        load_reviews(path)
    assert caught.value.problems == [
        "line 4: Overall 'abc' is not a number",
        "line 5: Overall 'nan' is not a number from 1 to 10",
        "line 6: Overall '11' is not a number from 1 to 10",
        "line 7: no paper_id",
        "line 8: duplicate paper_id 'a'",
    ]


def test_reviews_from_json_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps([{"paper_id": "a", "Overall": 5.5}]))
    (tmp_path / "r.jsonl").write_text('{"paper_id": "a", "overall": 7}\n\n{"paper_id": "b",')
    assert load_reviews(tmp_path / "r.json") == {"a": 5.5}
    with pytest.raises(CalibrationDataError, match="line 3: not JSON"):
        load_reviews(tmp_path / "r.jsonl")
    (tmp_path / "r.txt").write_text("x")
    with pytest.raises(CalibrationError, match=r"\.csv, \.json or \.jsonl"):
        load_reviews(tmp_path / "r.txt")
