"""The embeddable ``<guideline-qa>`` widget, driven in a real headless Chromium.

The real app (real Edge index of the real corpus, real local LLM) serves the demo
portal page on 127.0.0.1; Playwright drives Debian's chromium (``make browser-deps``),
never a downloaded browser. Every wait has a timeout and the server is stopped in
a fixture finaliser, so the test ends by itself.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from live_server import LiveServer  # tests/ is on sys.path (rootdir-relative conftest)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOT = Path("/tmp/widget.png")

COMPOSED_NOTICE = "回答は文書の該当箇所をそのまま引用して構成しています。「AI生成」と表示した一文だけはAIが書いたものです。必ず引用元の原文を確認してください。"
CLAUSES_NOTICE = "回答文は生成していません（該当箇所のみ）"
THANKS = "ご意見ありがとうございました"

WAIT = 30_000  # ms: page, search and rules-only answers
LLM_WAIT = 180_000  # ms: a generated answer on 2 CPU cores (usually 5–10 s once the model is warm)

# The widget keeps its parts in an open shadow root. Playwright's CSS locators pierce it;
# plain JS needs these helpers.
JS_HELPERS = """
window.__qa = () => document.querySelector('guideline-qa').shadowRoot;
window.__deepActive = () => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  return a;
};
"""

# Records how many verbatim pieces were on screen while the model was still writing, to
# prove the composed answer arrives before (and independently of) the model.
JS_WATCH_STREAM = """
() => {
  const el = window.__qa().querySelector('.answer-text');
  window.__busyPieces = [];
  const obs = new MutationObserver(() => {
    if (el.getAttribute('aria-busy') === 'true') window.__busyPieces.push(el.querySelectorAll('.piece').length);
  });
  obs.observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
}
"""


@pytest.fixture(scope="module")
def live(settings, built_index):
    from service.main import create_app

    server = LiveServer(create_app(settings)).start(timeout=300)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (run `make browser-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield b
        b.close()


def _open(browser, live, **context_args):
    context = browser.new_context(locale="ja-JP", **context_args)
    page = context.new_page()
    page.set_default_timeout(WAIT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.add_init_script(JS_HELPERS)
    page.goto(f"{live.url}/", wait_until="load")
    page.wait_for_function("customElements.get('guideline-qa') !== undefined && !!window.__qa()")
    return context, page, errors


@pytest.fixture
def page(browser, live):
    context, page, errors = _open(browser, live, viewport={"width": 1280, "height": 1000})
    yield page
    context.close()
    assert errors == [], f"browser console errors: {errors}"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as res:  # noqa: S310 - 127.0.0.1 only
        return json.loads(res.read().decode("utf-8"))


def _answer_id(page) -> str | None:
    return page.evaluate("window.__qa().host.answerId")


def _wait_done(page, previous: str | None, timeout: float) -> None:
    """Wait for the ``done`` event of a new answer (a new answer_id and an idle stream)."""
    page.wait_for_function(
        "prev => { const h = window.__qa().host; return h.answerId && h.answerId !== prev && !h.controller; }",
        arg=previous,
        timeout=timeout,
    )


def _ask(page, question: str, timeout: float = WAIT) -> float:
    """Type a question, send it with the button, wait for the final answer; returns seconds."""
    widget = page.locator("guideline-qa")
    previous = _answer_id(page)
    widget.get_by_label("質問", exact=True).fill(question)
    t0 = time.monotonic()
    widget.get_by_role("button", name="送信").click()
    _wait_done(page, previous, timeout)
    return time.monotonic() - t0


def test_widget_streams_cites_checks_and_takes_feedback(page, live):
    from playwright.sync_api import expect

    widget = page.locator("guideline-qa")
    expect(page.get_by_text("デモページ")).to_be_visible()
    expect(widget.get_by_role("heading", name="生成AIガイドライン QA")).to_be_visible()
    expect(widget.get_by_role("button", name="回答", exact=True)).to_have_attribute("aria-pressed", "true")

    # 1. A composed answer: clauses first, then the verbatim pieces with their citations while the
    # model is still choosing; the one sentence the model wrote (if it passed the gate) is badged.
    page.evaluate(JS_WATCH_STREAM)
    widget.get_by_label("質問", exact=True).fill("生成AIの回答をそのまま使っていい？")
    t0 = time.monotonic()
    page.keyboard.press("Enter")  # focus is in the textarea: Enter sends
    clauses = widget.locator("section.clauses li")
    expect(clauses.first).to_be_visible(timeout=WAIT)
    t_clauses = time.monotonic() - t0
    expect(widget.locator("section.clauses h3")).to_have_text("関連する箇所")
    expect(clauses.first.locator(".meta")).to_contain_text(" > ")  # section path
    answer = widget.locator(".answer-text")
    expect(answer.locator(".piece").first).to_be_visible(timeout=WAIT)
    t_pieces = time.monotonic() - t0
    _wait_done(page, None, LLM_WAIT)
    t_done = time.monotonic() - t0
    busy = page.evaluate("window.__busyPieces")
    assert any(n > 0 for n in busy), f"no quoted piece was on screen while the model was writing: {busy[:20]}"

    expect(answer).to_have_attribute("aria-busy", "false")
    expect(widget.get_by_text(COMPOSED_NOTICE)).to_be_visible()
    expect(widget.locator(".answer-head .badge")).to_have_text(re.compile("引用"))
    lead = answer.locator(".lead")
    if lead.count():
        expect(lead.locator(".badge")).to_have_text("AI生成")
    cites = widget.locator("button[data-n]")
    expect(cites.first).to_be_visible()
    inline = answer.locator("button.cite")
    target = inline.first if inline.count() else cites.first
    n = int(target.get_attribute("data-n"))
    unit_id = page.evaluate("n => window.__qa().host.citations.get(n).unit_id", n)
    unit = _get_json(f"{live.url}/v1/units/{unit_id}")

    # 2. The citation opens a dialog with the verbatim quote and the section path; Escape returns focus.
    target.click()
    dialog = widget.locator("dialog")
    expect(dialog).to_be_visible()
    assert dialog.locator("[data-part=quote]").text_content() == unit["text"]
    expect(dialog.locator("[data-part=section-path]")).to_have_text(" > ".join(unit["section_path"]))
    expect(dialog).to_contain_text(unit["doc_title"])
    expect(dialog).to_contain_text(unit["source_file"])
    page.screenshot(path="/tmp/widget-dialog.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("window.__deepActive().dataset.n") == str(n)
    page.screenshot(path=str(SHOT), full_page=True)

    # 3. 該当箇所のみ: no LLM, clauses only, and the widget says no answer text was generated.
    widget.get_by_role("button", name="該当箇所のみ").click()
    expect(widget.get_by_role("button", name="該当箇所のみ")).to_have_attribute("aria-pressed", "true")
    t_clauses_mode = _ask(page, "生成AIに個人情報を入力してよいですか？", timeout=WAIT)
    expect(clauses.first).to_be_visible()
    expect(widget.get_by_text(CLAUSES_NOTICE)).to_be_visible()
    expect(widget.locator(".answer-head .badge")).to_have_text("該当箇所のみ")

    # 4. A confidentiality question gets the rules' verdict card (text + symbol + colour).
    widget.get_by_role("button", name="回答", exact=True).click()
    t_check = _ask(page, "入札予定価格を規約に同意するだけの無料AIに入れていい？", timeout=LLM_WAIT)
    card = widget.locator("section.verdict")
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-verdict", "不可")
    expect(card.locator(".label")).to_have_text("×判定: 不可")
    expect(card).to_contain_text("機密性")
    page.screenshot(path="/tmp/widget-verdict.png", full_page=True)

    # 5. Feedback: 👍 posts to /v1/feedback and thanks the user.
    widget.get_by_label("ご意見（任意）").fill("判定が分かりやすい")
    with page.expect_response(lambda r: r.url.endswith("/v1/feedback")) as resp:
        widget.get_by_role("button", name="役に立った").click()
    assert resp.value.status == 200, resp.value.text()
    expect(widget.get_by_text(THANKS)).to_be_visible()

    print(
        f"\nwidget timings: clauses {t_clauses:.1f}s, pieces {t_pieces:.1f}s, answer done {t_done:.1f}s, "
        f"clauses mode {t_clauses_mode:.1f}s, verdict {t_check:.1f}s"
    )


def test_widget_keyboard_only_at_200_percent(browser, live):
    """Tab/Enter/Space/Escape only, in a 640 px wide viewport (a 1280 px screen at 200 % zoom)."""
    from playwright.sync_api import expect

    context, page, errors = _open(browser, live, viewport={"width": 640, "height": 900})
    try:
        widget = page.locator("guideline-qa")
        focused = lambda: page.evaluate(  # noqa: E731
            "() => { const a = window.__deepActive(); return a ? [a.tagName, a.textContent.trim(), a.getAttribute('aria-pressed'), a.dataset.n || null] : null; }"
        )

        def tab_to(predicate, limit=60, key="Tab"):
            for _ in range(limit):
                page.keyboard.press(key)
                if predicate(focused()):
                    return
            raise AssertionError(f"could not reach the element with {key}; last focus {focused()}")

        tab_to(lambda f: f and f[0] == "TEXTAREA")
        # Keyboard focus is visible (an outline, not only a colour change).
        outline = page.evaluate("getComputedStyle(window.__deepActive()).outlineStyle")
        assert outline not in ("", "none"), outline
        page.keyboard.type("個人情報の取扱いについて")
        page.keyboard.press("Shift+Enter")  # a newline, not a send
        page.keyboard.type("どこに書かれていますか")
        assert "\n" in widget.get_by_label("質問", exact=True).input_value()

        tab_to(lambda f: f and f[1] == "該当箇所のみ")
        assert page.evaluate("getComputedStyle(window.__deepActive()).outlineStyle") not in ("", "none")
        page.keyboard.press("Space")
        expect(widget.get_by_role("button", name="該当箇所のみ")).to_have_attribute("aria-pressed", "true")
        tab_to(lambda f: f and f[0] == "TEXTAREA", key="Shift+Tab")
        page.keyboard.press("Enter")
        _wait_done(page, None, WAIT)
        expect(widget.locator("section.clauses li").first).to_be_visible()

        tab_to(lambda f: f and f[3] is not None)  # the first citation button
        n = focused()[3]
        page.keyboard.press("Enter")
        dialog = widget.locator("dialog")
        expect(dialog).to_be_visible()
        assert page.evaluate("window.__deepActive().closest('dialog') !== null"), "focus did not move into the dialog"
        expect(dialog.locator("[data-part=quote]")).not_to_be_empty()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert focused()[3] == n, "focus did not return to the citation"
        page.keyboard.press("Space")  # Space opens it as well
        expect(dialog).to_be_visible()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        # Nothing forces sideways scrolling at this width.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path="/tmp/widget-zoom200.png", full_page=True)
    finally:
        context.close()
    assert errors == [], f"browser console errors: {errors}"


@pytest.fixture(scope="module")
def live_curated(tmp_path_factory, settings):
    """The app over a copy of the corpus whose registry holds the evaluation's 25 registered answers (no LLM)."""
    import shutil

    from guideqa.settings import PROJECT_ROOT
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer
    from ingest.curated import CURATED_FILE
    from ingest.pipeline import ingest_corpus
    from service.main import create_app

    root = tmp_path_factory.mktemp("widget-curated")
    shutil.copytree(PROJECT_ROOT / "corpus", root / "corpus")
    shutil.copy(PROJECT_ROOT / "eval" / "data" / "curated" / "curated.yaml", root / "corpus" / CURATED_FILE)
    local = settings.model_copy(update={"data_dir": root / "data", "corpus_dir": root / "corpus", "llm_backend": "none"})
    result = ingest_corpus(local.corpus_dir)
    build_index(result.units, local, embed_model=get_embedding_model(local), tokenizer=get_tokenizer())
    server = LiveServer(create_app(local)).start(timeout=120)
    yield server
    server.stop()


def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:  # noqa: S310 - 127.0.0.1 only
        return json.loads(res.read().decode("utf-8"))


def test_widget_shows_the_registered_answer_first_and_offers_similar_questions(browser, live_curated):
    from playwright.sync_api import expect

    context, page, errors = _open(browser, live_curated, viewport={"width": 1280, "height": 1000})
    widget = page.locator("guideline-qa")
    _ask(page, "ハルシネーションってどういう意味？")
    block = widget.locator("section.curated")
    expect(block).to_be_visible()
    expect(block.get_by_role("heading", name="登録済みの回答")).to_be_visible()
    expect(block.locator(".badge.ai")).to_have_count(0)  # the office wrote it: never badged as AI
    expect(block.locator("[data-curated='cur-003']")).to_contain_text("ハルシネーション")
    # Above the composed answer, which still follows.
    assert page.evaluate("(() => { const r = window.__qa(); return !!(r.querySelector('section.curated').compareDocumentPosition(r.querySelector('section.answer')) & Node.DOCUMENT_POSITION_FOLLOWING); })()")
    block.locator("button.cite").first.click()
    dialog = widget.locator("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("生成AIが事実と異なることをもっともらしく回答すること")
    dialog.get_by_role("button", name="閉じる").click()

    # 「よく似た質問」 lists what the API offers, and clicking one asks it.
    question = "生成AIを導入している自治体はどのくらいありますか？"
    similar = _post_json(f"{live_curated.url}/v1/ask", {"question": question, "mode": "clauses"})["similar"]
    _ask(page, question)
    buttons = widget.locator("section.similar button")
    assert similar, "the registry holds questions close to this one"
    expect(buttons).to_have_count(len(similar))
    previous = _answer_id(page)
    buttons.first.click()
    _wait_done(page, previous, WAIT)
    expect(widget.get_by_label("質問", exact=True)).to_have_value(similar[0]["question"])
    expect(block.locator(f"[data-curated='{similar[0]['id']}']")).to_be_visible()  # asked word for word: its own answer

    # A question about something else leaves no registered answer behind.
    _ask(page, "年次有給休暇の申請は何日前までに出せばいいですか？")
    expect(block).to_be_hidden()
    context.close()
    assert errors == [], f"browser console errors: {errors}"
