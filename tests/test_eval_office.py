"""The office section of ``guideqa eval`` on a slice: three 汐見野市 questions on that office's own
deployment (a real index of the bundled corpus plus its rule, its real policy), composed answers
without the LLM. The scores are checked against the real answers, recomputed here from the cited
labels and documents."""

from __future__ import annotations

import json
import shutil

import pytest

from eval.devset import DevItem, dump_jsonl
from eval.office import (
    ALL_OFFICES,
    OFFICE_DIR,
    load_office_items,
    plan_offices,
    prepare_offices,
    run_offices,
    summarize_offices,
)
from eval.report import load_tolerances
from guideqa.errors import EvalDataInvalid
from index.tokenizer import get_tokenizer
from ingest.cleaning import squash
from ingest.manifest import load_manifest

SLICE = ("o001", "o004", "o037")  # a definition (local first), a check decided by the policy, an unanswerable
OFFICE = "汐見野市"


@pytest.fixture(scope="module")
def office_doc() -> str:
    return next(m.doc_id for m in load_manifest(OFFICE_DIR / "manifest.json") if m.issuer == OFFICE)


@pytest.fixture(scope="module")
def items() -> list[DevItem]:
    return [it for it in load_office_items() if it.id in SLICE]


@pytest.fixture(scope="module")
def office_settings(settings, tmp_path_factory):
    return settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("offices"), "llm_backend": "none"})


@pytest.fixture(scope="module")
def plan(office_settings, items):
    return prepare_offices(office_settings, items, get_tokenizer())


@pytest.fixture(scope="module")
def rows(plan, tmp_path_factory):
    results = tmp_path_factory.mktemp("office-report") / "office_results.jsonl"
    out = run_offices(plan, backend=None, tokenizer=get_tokenizer(), results_path=results)
    written = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in written] == [r["id"] for r in out]
    return {r["id"]: r for r in out}


def test_every_office_item_agrees_with_its_office_deployment(office_settings):
    items = load_office_items()
    plan = plan_offices(office_settings, items)  # raises EvalDataInvalid, naming the items, on any problem
    assert sorted(it.id for dep in plan.deployments for it in dep.items) == sorted(it.id for it in items)
    assert {dep.name for dep in plan.deployments} == {it.office for it in items if it.office} | {ALL_OFFICES}
    assert all(dep.policy is not None for dep in plan.deployments if dep.name != ALL_OFFICES)


def test_the_office_runs_its_own_deployment_with_its_own_rule_and_gold_from_the_evidence(plan, office_doc):
    [dep] = plan.deployments
    assert dep.name == OFFICE and dep.doc_ids == (office_doc,) and dep.policy.name == "policy-shiomino.yaml"
    docs = {u.doc_id for u in dep.units}
    assert office_doc in docs and not any(d.startswith(("suginoura", "hoshigahara")) for d in docs)
    assert (dep.settings.index_root / "CURRENT").is_file() and dep.settings.qdrant_url is None
    by_id = {u.id: u for u in dep.units}
    for it in dep.items:
        if it.type == "unanswerable":
            assert it.gold_units == []
            continue
        assert it.gold_units and all(by_id[g].doc_id == office_doc for g in it.gold_units)
        assert all(any(squash(q) in squash(by_id[g].text) for g in it.gold_units) for q in it.evidence)


def test_right_article_and_local_first_are_read_off_the_real_citations(rows, items, office_doc):
    for it in items:
        row = rows[it.id]
        assert row["set"] == "office" and row["office"] == OFFICE and "answer" in row
        cited = [(c["doc_title"], c["label"]) for c in sorted(row["citations"], key=lambda c: c["n"])]
        assert all(c["valid"] for c in row["citations"]), row["citations"]
        expected = list(getattr(it, "expected_labels", []) or [])
        found = [lab for lab in expected if any(squash(lab) in (squash(label), squash(title + label)) for title, label in cited if label)]
        assert row["labels_found"] == found
        assert row["labels_right"] == (bool(found) if expected else None)
        if getattr(it, "local_first", False):
            assert row["local_first"] == (row["citations"][0]["doc_id"] == office_doc)
        else:
            assert row["local_first"] is None
    # The verdict card of a check question comes from the office's policy, not the national table.
    assert rows["o004"]["verdict_card"]["decided_by"] == "local_policy"
    assert rows["o004"]["first_cited"]["from_card"] is True


def test_the_summary_counts_what_the_rows_say(rows, plan):
    section = summarize_offices(list(rows.values()), plan, gap_tolerances=load_tolerances()["office_split_gap"], llm=None)
    office = section["by_office"][OFFICE]
    assert office["n"] == len(SLICE) == section["all"]["n"]
    labelled = [r["labels_right"] for r in rows.values() if r["labels_right"] is not None]
    assert office["labels_right"] == round(sum(labelled) / len(labelled), 4)
    assert office["unanswerable_declined"] == (1.0 if rows["o037"]["abstained"] else 0.0)
    assert {g["metric"] for g in section["split_gaps"]} <= set(load_tolerances()["office_split_gap"])
    failing = [r["id"] for r in rows.values() if r["why"]]
    passing = [r for r in rows.values() if not r["why"]]
    assert all(r["answer_verdict"] == "correct" and r["labels_right"] in (True, None) and r["local_first"] in (True, None) for r in passing), failing


def test_a_key_fact_in_none_of_the_gold_units_stops_the_run_naming_the_item(office_settings, items, tmp_path):
    doctored = [it.model_copy(update={"key_facts": [*it.key_facts, ["令和9年度から全庁で必須"]]}) if it.id == "o001" else it for it in items]
    with pytest.raises(EvalDataInvalid) as err:
        prepare_offices(office_settings.model_copy(update={"data_dir": tmp_path}), doctored, get_tokenizer())
    assert "o001" in err.value.message and "令和9年度から全庁で必須" in err.value.message
    assert not (tmp_path / "eval").exists()  # stopped before any index was built


def test_a_policy_citing_words_its_rule_does_not_hold_stops_the_run(office_settings, items, tmp_path):
    office_dir = tmp_path / "office"
    shutil.copytree(OFFICE_DIR, office_dir)
    policy = office_dir / "policy-shiomino.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("利用者は、許可サービスに機密情報を入力してはならない", "利用者は、許可サービスに機密情報を入力してよい"), encoding="utf-8")
    dump_jsonl(items, office_dir / "devset.jsonl")
    plan = prepare_offices(office_settings.model_copy(update={"data_dir": tmp_path / "data"}), items, get_tokenizer(), office_dir=office_dir)
    with pytest.raises(EvalDataInvalid, match="policy-shiomino.yaml"):
        run_offices(plan, backend=None, tokenizer=get_tokenizer(), results_path=tmp_path / "office_results.jsonl")


def test_guideqa_eval_reports_the_office_section(settings, built_index, items, tmp_path):
    from eval.devset import load_checkset, load_devset
    from eval.run import OFFICE_RESULTS, EvalOptions, run_eval

    dev = [d for d in load_devset() if d.type in ("fact", "unanswerable")][:2]
    dump_jsonl(dev, tmp_path / "dev.jsonl")
    dump_jsonl(load_checkset()[:2], tmp_path / "check.jsonl")
    dump_jsonl(items, tmp_path / "office.jsonl")
    opts = EvalOptions(
        mode="clauses", devset=tmp_path / "dev.jsonl", checkset=tmp_path / "check.jsonl", office=True, office_devset=tmp_path / "office.jsonl",
        out_dir=tmp_path / "report", compare_to=tmp_path / "none",
    )
    outcome = run_eval(settings.model_copy(update={"llm_backend": "none"}), opts, command="pytest")

    office = outcome.summary["office"]
    assert office["all"]["n"] == len(items) == outcome.summary["meta"]["n_office"] and office["llm"] is None
    assert [d["name"] for d in office["deployments"]] == [OFFICE] and "compare" not in outcome.summary
    rows = [json.loads(line) for line in (outcome.out_dir / OFFICE_RESULTS).read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(SLICE)
    report = (outcome.out_dir / "report.md").read_text(encoding="utf-8")
    assert "## Office regulations" in report and f"| {OFFICE} | {len(SLICE)} |" in report
    assert all(f"`{r['id']}`" in report for r in rows if r["why"])
