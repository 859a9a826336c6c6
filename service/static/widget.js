/*
 * <guideline-qa> — an embeddable question-answering widget for the 生成AIガイドライン QA service.
 *
 * Usage on any intranet page (no build step, no framework, no external resources):
 *
 *   <script src="http://qa.example.lg.jp/widget.js"></script>
 *   <guideline-qa endpoint="http://qa.example.lg.jp" key="..." title="生成AIガイドライン QA"></guideline-qa>
 *
 * Attributes
 *   endpoint  base URL of the API (default: the origin this script was loaded from)
 *   key       optional API key, sent as X-API-Key
 *   title     heading shown at the top of the widget
 *   mode      "answer" (default) or "clauses" — the initial mode of the 回答 / 該当箇所のみ switch
 *
 * The answer streams from POST {endpoint}/v1/ask with "stream": true. EventSource
 * cannot send a POST body or headers, so the text/event-stream body is read with
 * fetch() and a ReadableStream reader and parsed by SSEParser below.
 *
 * Safety: every piece of server text goes into the page through textContent or
 * text nodes — never innerHTML — so a clause quoting "<script>" stays text.
 */
(() => {
  "use strict";

  const TAG = "guideline-qa";
  if (customElements.get(TAG)) return; // the script may be included twice on a portal page

  // Captured now: document.currentScript is only set while this script first runs.
  const SCRIPT_ORIGIN = (() => {
    try {
      return new URL(document.currentScript.src).origin;
    } catch (_) {
      return window.location.origin;
    }
  })();

  const AI_NOTICE = "この回答はAI（生成AI）が作成したものです。必ず引用元の原文を確認してください。";
  const COMPOSED_NOTICE = "回答は文書の該当箇所をそのまま引用して構成しています。「AI生成」と表示した一文だけはAIが書いたものです。必ず引用元の原文を確認してください。";
  const NEAREST_LABEL = "最も近い記載（回答ではありません）";
  const GUIDANCE_LABEL = "国・都等のガイドライン（参考）";
  const LOCAL_LABEL = "本団体の規程";
  const ITEMS_SHOWN = 12;
  const CLAUSES_NOTICE = "回答文は生成していません（該当箇所のみ）";
  const RULES_NOTICE = "この判定は規則表に基づいて作成したものです（AIによる文章生成ではありません）。必ず引用元の原文を確認してください。";

  // Colour is never the only signal: each verdict also has a symbol and its text.
  const VERDICTS = {
    "可": { cls: "ok", symbol: "○" },
    "条件付きで可": { cls: "cond", symbol: "△" },
    "不可": { cls: "ng", symbol: "×" },
    "判断できない": { cls: "unknown", symbol: "？" },
  };

  /* ------------------------------------------------------------------ */
  /* Small DOM helpers: build elements from text only.                    */
  /* ------------------------------------------------------------------ */

  /** Create an element with attributes and children (strings become text nodes). */
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  function clear(el) {
    el.replaceChildren();
  }

  function sectionPath(path) {
    return Array.isArray(path) && path.length ? path.join(" > ") : "";
  }

  function sourceLabel(item) {
    if (!item.source_file) return "";
    const end = item.line_end || item.line_start;
    const lines = !item.line_start ? "" : end === item.line_start ? `（${end}行）` : `（${item.line_start}〜${end}行）`;
    return `${item.source_file}${lines}`;
  }

  /* ------------------------------------------------------------------ */
  /* Server-sent events over fetch().                                   */
  /* ------------------------------------------------------------------ */

  /**
   * Incremental text/event-stream parser (the subset the API uses: event, data, comments).
   * Frames may be split anywhere across network chunks, and sse-starlette ends lines
   * with CRLF, so lines are only taken once their terminator is certain.
   */
  class SSEParser {
    constructor(onEvent) {
      this.onEvent = onEvent;
      this.buffer = "";
      this.eventType = "";
      this.dataLines = [];
    }

    push(text) {
      this.buffer += text;
      const re = /\r\n|\r|\n/g;
      let start = 0;
      let m;
      while ((m = re.exec(this.buffer)) !== null) {
        // A CR at the very end may be the first half of a CRLF still in flight.
        if (m[0] === "\r" && m.index === this.buffer.length - 1) break;
        this.line(this.buffer.slice(start, m.index));
        start = re.lastIndex;
      }
      this.buffer = this.buffer.slice(start);
    }

    /** The body ended: flush a last frame the server did not terminate with a blank line. */
    end() {
      if (this.buffer) this.line(this.buffer.replace(/\r$/, ""));
      this.buffer = "";
      this.line("");
    }

    line(line) {
      if (line === "") return this.dispatch();
      if (line.startsWith(":")) return; // comment, e.g. the keep-alive ping
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.eventType = value;
      else if (field === "data") this.dataLines.push(value);
    }

    dispatch() {
      const type = this.eventType || "message";
      const data = this.dataLines.join("\n");
      const hasData = this.dataLines.length > 0;
      this.eventType = "";
      this.dataLines = [];
      if (hasData) this.onEvent(type, data);
    }
  }

  /** An API failure with the server's Japanese message (or our own for network errors). */
  class ApiError extends Error {
    constructor(message, code = "", status = 0) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  /** Turn a non-2xx response into an ApiError carrying the {"error": {code, message}} text. */
  async function errorFromResponse(res) {
    let code = "";
    let message = `サーバーでエラーが発生しました（HTTP ${res.status}）。`;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) {
        message = String(body.error.message);
        code = String(body.error.code || "");
      }
    } catch (_) {
      /* not JSON: keep the generic message */
    }
    const retry = res.headers.get("Retry-After");
    if (retry && /^\d+$/.test(retry)) message += `（約${retry}秒後に再度お試しください）`;
    else if (res.status === 429 || res.status === 503) message += "（しばらく待ってから再度お試しください）";
    return new ApiError(message, code, res.status);
  }

  /* ------------------------------------------------------------------ */
  /* Styles (inside the shadow root, so the host page cannot break them). */
  /* ------------------------------------------------------------------ */

  const STYLE = `
    :host { display: block; font-family: system-ui, "Hiragino Sans", "Noto Sans JP", "Yu Gothic", Meiryo, sans-serif;
            font-size: 1rem; line-height: 1.6; color: #1a1a1a; max-width: 100%; }
    * { box-sizing: border-box; }
    [hidden] { display: none !important; }
    .box { border: 1px solid #8a96a3; border-radius: 0.5rem; background: #fff; padding: 1rem; overflow-wrap: anywhere; }
    h2 { font-size: 1.15rem; margin: 0 0 0.5rem; }
    h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
    label { font-weight: 600; display: block; margin-bottom: 0.25rem; }
    textarea { width: 100%; min-height: 4.5em; font: inherit; padding: 0.5rem; border: 1px solid #5c6670; border-radius: 0.3rem; resize: vertical; }
    .hint { font-size: 0.85rem; color: #4a5560; margin: 0.2rem 0 0.5rem; }
    .controls { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; justify-content: space-between; }
    .modes { display: inline-flex; flex-wrap: wrap; border: 1px solid #5c6670; border-radius: 0.3rem; overflow: hidden; }
    .modes button { border: 0; border-radius: 0; background: #fff; color: #1a1a1a; }
    .modes button[aria-pressed="true"] { background: #1d4f91; color: #fff; font-weight: 700; }
    /* The tick repeats aria-pressed visually; "/ ''" keeps it out of the accessible name where supported. */
    .modes button[aria-pressed="true"]::before { content: "✓ "; content: "✓ " / ""; }
    button { font: inherit; cursor: pointer; padding: 0.4rem 0.9rem; border: 1px solid #5c6670; border-radius: 0.3rem; background: #f3f5f7; color: #1a1a1a; }
    button:hover { background: #e4e9ee; }
    button.primary { background: #1d4f91; border-color: #1d4f91; color: #fff; font-weight: 700; }
    button.primary:hover { background: #163e73; }
    button:disabled { opacity: 0.6; cursor: not-allowed; }
    :focus-visible { outline: 3px solid #e07b00; outline-offset: 2px; }
    textarea:focus-visible { outline-offset: 0; }
    .status { font-size: 0.9rem; color: #4a5560; min-height: 1.4em; margin: 0.5rem 0 0; }
    .error { border: 2px solid #b00020; background: #fdecee; color: #6b0013; padding: 0.5rem 0.75rem; border-radius: 0.3rem; margin-top: 0.75rem; }
    .error::before { content: "⚠ エラー: "; font-weight: 700; }
    .notice { border-left: 4px solid #1d4f91; background: #eef3fa; padding: 0.4rem 0.75rem; margin: 0.5rem 0; font-size: 0.95rem; }
    .sysnotice { border-left-color: #b35c00; background: #fff4e5; }
    .answer { margin-top: 0.75rem; border-top: 1px solid #c9d0d6; padding-top: 0.5rem; }
    .answer-head { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
    .badge { display: inline-block; font-size: 0.78rem; font-weight: 700; padding: 0.05rem 0.5rem; border-radius: 1rem; border: 1px solid currentColor; }
    .badge.ai { color: #6a1b9a; background: #f6ecfa; }
    .badge.rules { color: #1d4f91; background: #eef3fa; }
    .badge.clauses { color: #37474f; background: #eceff1; }
    .answer-text { white-space: pre-wrap; margin: 0.4rem 0; }
    .answer-text[aria-busy="true"]::after { content: "▍"; animation: blink 1s steps(1) infinite; }
    @keyframes blink { 50% { opacity: 0; } }
    @media (prefers-reduced-motion: reduce) { .answer-text[aria-busy="true"]::after { animation: none; } }
    button.cite { padding: 0 0.3rem; margin: 0 0.1rem; font-size: 0.85em; vertical-align: baseline; background: #eef3fa; border-color: #1d4f91; color: #1d4f91; }
    .meta { font-size: 0.85rem; color: #4a5560; }
    ol.list { padding-left: 1.6rem; margin: 0.3rem 0; }
    ol.list li { margin-bottom: 0.5rem; }
    .item-title { font-weight: 600; }
    .excerpt { margin: 0.15rem 0; font-size: 0.92rem; color: #333; white-space: pre-wrap; }
    button.link { padding: 0.1rem 0.5rem; font-size: 0.85rem; }
    .verdict { margin-top: 0.75rem; border: 2px solid; border-radius: 0.5rem; padding: 0.75rem; }
    .verdict .label { font-size: 1.2rem; font-weight: 700; margin: 0; }
    .verdict .symbol { display: inline-block; min-width: 1.6em; text-align: center; }
    .verdict.ok { border-color: #1b7a3a; background: #eaf6ee; }
    .verdict.ok .label { color: #11592a; }
    .verdict.cond { border-color: #a06800; background: #fff6e0; }
    .verdict.cond .label { color: #6e4700; }
    .verdict.ng { border-color: #b00020; background: #fdecee; }
    .verdict.ng .label { color: #8a0019; }
    .verdict.unknown { border-color: #5c6670; background: #f1f3f5; }
    .verdict.unknown .label { color: #37414a; }
    .verdict dl { margin: 0.4rem 0 0; }
    .verdict dt { font-weight: 700; margin-top: 0.4rem; }
    .verdict dd { margin: 0.1rem 0 0 1rem; }
    .verdict ul { margin: 0.1rem 0; padding-left: 1.3rem; }
    .feedback { margin-top: 0.75rem; border-top: 1px solid #c9d0d6; padding-top: 0.5rem; }
    .feedback .row { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin-top: 0.4rem; }
    .feedback textarea { min-height: 2.5em; }
    .thanks { color: #11592a; font-weight: 600; }
    dialog { max-width: min(46rem, 94vw); width: 100%; max-height: 90vh; border: 1px solid #5c6670; border-radius: 0.5rem; padding: 1rem; color: #1a1a1a; background: #fff; overflow: auto; }
    dialog::backdrop { background: rgba(0, 0, 0, 0.45); }
    dialog h2 { margin-right: 4rem; }
    dialog .close { position: absolute; top: 0.75rem; right: 0.75rem; }
    dialog dl { margin: 0.5rem 0; }
    dialog dt { font-weight: 700; font-size: 0.9rem; color: #4a5560; }
    dialog dd { margin: 0 0 0.4rem 0; }
    .part { margin: 0.4rem 0 0.8rem; }
    .part-q { font-weight: 700; margin: 0.2rem 0; }
    .lead { margin: 0.3rem 0; font-weight: 600; }
    .lead .badge { margin-left: 0.4rem; }
    .heading { margin: 0.3rem 0 0.1rem; font-weight: 600; }
    ul.items { margin: 0.2rem 0; padding-left: 1.4rem; }
    ul.items li { margin: 0.15rem 0; }
    .piece { margin: 0.3rem 0; padding: 0.3rem 0.6rem; border-left: 3px solid #8a96a3; background: #f7f9fb; white-space: pre-wrap; }
    .piece.local { border-left-color: #1b7a3a; background: #eef7f0; }
    .piece.nearest { border-left-style: dashed; background: #fafafa; color: #37414a; }
    .scope { font-size: 0.85rem; font-weight: 700; color: #37414a; margin: 0.5rem 0 0.1rem; }
    .where { font-size: 0.85rem; color: #4a5560; }
    .part-note { font-size: 0.92rem; color: #6e4700; margin: 0.3rem 0; }
    .notfound { font-weight: 600; }
    .compare { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 0.6rem; }
    .compare .col { border: 1px solid #c9d0d6; border-radius: 0.4rem; padding: 0.4rem 0.6rem; }
    .compare .col h4 { font-size: 0.92rem; margin: 0 0 0.3rem; }
    blockquote.quote { margin: 0.5rem 0; padding: 0.5rem 0.75rem; border-left: 4px solid #1d4f91; background: #f7f9fb;
                       white-space: pre-wrap; font-family: inherit; }
  `;

  /* The registered answer (登録済みの回答) and the similar registered questions (よく似た質問). */
  const CURATED_STYLE = `
    .curated { margin-top: 0.75rem; border: 2px solid #1b7a3a; border-radius: 0.5rem; background: #f3faf5; padding: 0.75rem; }
    .curated h3 { margin: 0; }
    .badge.registered { color: #11592a; background: #eaf6ee; }
    .curated-text { white-space: pre-wrap; margin: 0.4rem 0; }
    .curated .cites { display: flex; flex-wrap: wrap; gap: 0.3rem; align-items: center; }
    .similar { margin-top: 0.75rem; }
    .similar ul { margin: 0.2rem 0; padding-left: 1.2rem; }
    .similar button.link { text-align: left; }
  `;
  const CURATED_NOTICE = "この回答は担当部署が登録したものです（AIが生成したものではありません）。下に、文書の該当箇所から構成した回答も示します。";

  /* ------------------------------------------------------------------ */
  /* The custom element.                                                 */
  /* ------------------------------------------------------------------ */

  class GuidelineQA extends HTMLElement {
    static get observedAttributes() {
      return ["title", "mode"];
    }

    constructor() {
      super();
      // Open so that page scripts and automated tests can reach the parts; nothing secret lives here.
      this.attachShadow({ mode: "open" });
      this.mode = "answer";
      this.controller = null; // AbortController of the request in flight
      this.citations = new Map(); // n -> citation, for the [n] buttons
      this.answerId = null;
      this.lastOpener = null; // the button that opened the dialog, to return focus to it
      this.build();
    }

    connectedCallback() {
      this.setMode(this.getAttribute("mode") === "clauses" ? "clauses" : "answer");
      this.els.title.textContent = this.getAttribute("title") || "生成AIガイドライン QA";
    }

    disconnectedCallback() {
      if (this.controller) this.controller.abort();
    }

    attributeChangedCallback(name, _old, value) {
      if (!this.els) return;
      if (name === "title") this.els.title.textContent = value || "生成AIガイドライン QA";
      if (name === "mode") this.setMode(value === "clauses" ? "clauses" : "answer");
    }

    get endpoint() {
      return (this.getAttribute("endpoint") || SCRIPT_ORIGIN).replace(/\/+$/, "");
    }

    headers() {
      const headers = { "Content-Type": "application/json", Accept: "text/event-stream, application/json" };
      const key = this.getAttribute("key");
      if (key) headers["X-API-Key"] = key;
      return headers;
    }

    /* ---------- static skeleton ---------- */

    build() {
      // Unique ids per instance: two widgets on one page must not share label targets.
      const uid = `gqa${Math.random().toString(36).slice(2, 8)}`;
      const els = {};
      els.title = h("h2", { id: `${uid}-title` });
      els.question = h("textarea", {
        id: `${uid}-q`,
        name: "question",
        maxlength: "2000",
        rows: "3",
        "aria-describedby": `${uid}-hint`,
        placeholder: "例: 3C情報をクラウドの生成AIに入力してよいですか？",
        onkeydown: (e) => this.onQuestionKey(e),
      });
      els.modeAnswer = h("button", { type: "button", "aria-pressed": "true", onclick: () => this.setMode("answer") }, "回答");
      els.modeClauses = h("button", { type: "button", "aria-pressed": "false", onclick: () => this.setMode("clauses") }, "該当箇所のみ");
      els.send = h("button", { type: "submit", class: "primary" }, "送信");
      els.form = h(
        "form",
        { onsubmit: (e) => { e.preventDefault(); this.submit(); } },
        h("label", { for: `${uid}-q` }, "質問"),
        els.question,
        h("p", { class: "hint", id: `${uid}-hint` }, "Enter で送信、Shift+Enter で改行します。個人情報は入力しないでください。"),
        h(
          "div",
          { class: "controls" },
          h("div", { class: "modes", role: "group", "aria-label": "表示モード" }, els.modeAnswer, els.modeClauses),
          els.send,
        ),
      );
      els.status = h("p", { class: "status", role: "status", "aria-live": "polite" });
      els.error = h("div", { class: "error", role: "alert", hidden: true });
      els.sysNotice = h("p", { class: "notice sysnotice", hidden: true });
      els.verdict = h("section", { class: "verdict", hidden: true, "aria-label": "判定" });

      els.badge = h("span", { class: "badge ai" }, "AI生成");
      els.aiNotice = h("p", { class: "notice", "data-part": "ai-notice" }, AI_NOTICE);
      // aria-busy while streaming: screen readers wait for the finished text instead of reading every token.
      els.answerText = h("div", { class: "answer-text", "aria-live": "polite", "aria-busy": "false", "aria-labelledby": `${uid}-ah` });
      els.removed = h("p", { class: "meta", hidden: true });
      els.citeList = h("ol", { class: "list" });
      els.citeBlock = h("div", { hidden: true }, h("h3", {}, "引用元"), els.citeList);
      els.answer = h(
        "section",
        { class: "answer", hidden: true, "aria-labelledby": `${uid}-ah` },
        h("div", { class: "answer-head" }, h("h3", { id: `${uid}-ah`, style: "margin:0" }, "回答"), els.badge),
        els.aiNotice,
        els.answerText,
        els.removed,
        els.citeBlock,
      );

      els.clauseList = h("ol", { class: "list" });
      els.clauses = h(
        "section",
        { class: "clauses", hidden: true, "aria-labelledby": `${uid}-ch` },
        h("h3", { id: `${uid}-ch` }, "関連する箇所"),
        els.clauseList,
      );

      els.feedback = this.buildFeedback(uid, els);
      els.dialog = this.buildDialog(uid, els);

      const root = h(
        "div",
        { class: "box", role: "region", "aria-labelledby": `${uid}-title` },
        els.title,
        els.form,
        els.status,
        els.error,
        els.sysNotice,
        els.verdict,
        els.answer,
        els.clauses,
        els.feedback,
      );
      this.shadowRoot.append(h("style", {}, STYLE), root, els.dialog);
      this.els = els;
    }

    buildFeedback(uid, els) {
      els.comment = h("textarea", { id: `${uid}-c`, maxlength: "2000", rows: "2" });
      // Visible words next to the emoji: some intranet PCs have no emoji font, and the label must match what is seen.
      els.up = h("button", { type: "button", "aria-label": "役に立った", onclick: () => this.sendFeedback("up") }, h("span", { "aria-hidden": "true" }, "👍 "), "役に立った");
      els.down = h("button", { type: "button", "aria-label": "役に立たなかった", onclick: () => this.sendFeedback("down") }, h("span", { "aria-hidden": "true" }, "👎 "), "役に立たなかった");
      els.thanks = h("p", { class: "thanks", role: "status", hidden: true });
      els.feedbackControls = h(
        "div",
        {},
        h("label", { for: `${uid}-c` }, "ご意見（任意）"),
        els.comment,
        h("p", { class: "meta", style: "margin:0.4rem 0 0" }, "この回答は役に立ちましたか？"),
        h("div", { class: "row" }, els.up, els.down),
      );
      return h(
        "section",
        { class: "feedback", hidden: true, "aria-label": "フィードバック" },
        els.feedbackControls,
        els.thanks,
      );
    }

    buildDialog(uid, els) {
      els.dTitle = h("h2", { id: `${uid}-dt` });
      els.dDoc = h("dd");
      els.dPath = h("dd", { "data-part": "section-path" });
      els.dSource = h("dd");
      els.dQuote = h("blockquote", { class: "quote", "data-part": "quote" });
      const dialog = h(
        "dialog",
        { "aria-labelledby": `${uid}-dt` },
        els.dTitle,
        h("button", { type: "button", class: "close", onclick: () => dialog.close() }, "閉じる"),
        h("dl", {}, h("dt", {}, "文書"), els.dDoc, h("dt", {}, "箇所"), els.dPath, h("dt", {}, "出典ファイル"), els.dSource),
        h("p", { class: "meta" }, "原文（そのまま引用）:"),
        els.dQuote,
      );
      // <dialog> closes itself on Escape; we only put focus back where the user was.
      dialog.addEventListener("close", () => {
        if (this.lastOpener && this.lastOpener.isConnected) this.lastOpener.focus();
      });
      return dialog;
    }

    /* ---------- input ---------- */

    onQuestionKey(e) {
      // Enter while an IME is composing confirms the conversion — it must not send (Japanese input).
      if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) return;
      e.preventDefault();
      this.submit();
    }

    setMode(mode) {
      this.mode = mode;
      if (!this.els) return;
      this.els.modeAnswer.setAttribute("aria-pressed", String(mode === "answer"));
      this.els.modeClauses.setAttribute("aria-pressed", String(mode === "clauses"));
    }

    /* ---------- asking ---------- */

    async submit() {
      const question = this.els.question.value.trim();
      if (!question) {
        this.showError("質問を入力してください。");
        this.els.question.focus();
        return;
      }
      if (this.controller) this.controller.abort(); // a new question replaces the one in flight
      const controller = new AbortController();
      this.controller = controller;
      this.resetResult();
      this.setStatus("関連する箇所を検索しています…");
      this.els.form.setAttribute("aria-busy", "true");
      try {
        await this.ask(question, this.mode, controller.signal);
      } catch (err) {
        if (controller.signal.aborted) return;
        this.showError(err instanceof ApiError ? err.message : "サーバーに接続できませんでした。ネットワークと設定を確認してください。");
        this.setStatus("");
      } finally {
        if (this.controller === controller) {
          this.controller = null;
          this.els.form.removeAttribute("aria-busy");
          this.els.answerText.setAttribute("aria-busy", "false");
        }
      }
    }

    async ask(question, mode, signal) {
      const res = await fetch(`${this.endpoint}/v1/ask`, {
        method: "POST",
        headers: this.headers(),
        body: JSON.stringify({ question, mode, stream: true }),
        signal,
      });
      if (!res.ok) throw await errorFromResponse(res);
      const type = res.headers.get("Content-Type") || "";
      if (!type.includes("text/event-stream")) {
        // A server that ignores "stream" still returns the final object.
        this.onDone(await res.json());
        return;
      }
      this.streamState = { done: false, rules: false, error: false, text: "", mode };
      await this.readStream(res.body, signal);
      // An "error" event already told the user what went wrong; a stream ending without "done" is only news otherwise.
      if (!this.streamState.done && !this.streamState.error && !signal.aborted) {
        throw new ApiError("回答の受信が途中で終了しました。もう一度お試しください。");
      }
    }

    async readStream(body, signal) {
      const reader = body.getReader();
      const decoder = new TextDecoder("utf-8"); // stream:true keeps multi-byte characters split across chunks intact
      const parser = new SSEParser((type, data) => this.onEvent(type, data));
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(decoder.decode(value, { stream: true }));
        }
        parser.push(decoder.decode());
        parser.end();
      } finally {
        if (signal.aborted) reader.cancel().catch(() => {});
      }
    }

    /** Route one SSE frame; a malformed frame is skipped rather than ending the stream. */
    onEvent(type, raw) {
      let data;
      try {
        data = JSON.parse(raw);
      } catch (_) {
        return;
      }
      switch (type) {
        case "clauses":
          this.renderClauses(data);
          this.setStatus(this.streamState.mode === "answer" ? "回答を作成しています…" : "該当箇所を表示しています…");
          break;
        case "curated":
          this.renderCurated(data);
          break;
        case "check":
          this.renderVerdict(data);
          this.streamState.rules = true; // the text that follows is assembled from the rules, not generated
          break;
        case "answer":
          // Only composed, verified text is ever sent: verbatim pieces and a lead that passed the gate.
          this.setCitations((data && data.citations) || []);
          this.showAnswerFrame("composed", Boolean(data && data.ai_generated));
          this.renderParts((data && data.parts) || [], String((data && data.answer) || ""));
          break;
        case "status":
          if (data && data.state === "writing") {
            this.els.answerText.setAttribute("aria-busy", "true");
            this.setStatus("AIが該当箇所を選び、結論の一文を書いています…（引用は表示済みです）");
          }
          break;
        case "citations":
          this.setCitations((data && data.citations) || []);
          break;
        case "done":
          this.streamState.done = true;
          this.onDone(data);
          break;
        case "error":
          // Generation failed; the clauses stay, and a fallback "done" usually follows.
          this.streamState.error = true;
          this.showError((data && data.message) || "回答を生成できませんでした。");
          this.setStatus("回答を生成できませんでした。関連する箇所を確認してください。");
          break;
        default:
          break;
      }
    }

    onDone(data) {
      if (!data || typeof data !== "object") return;
      if (this.els.clauses.hidden && Array.isArray(data.related)) this.renderClauses(data.related); // non-streamed reply
      if (data.check && this.els.verdict.hidden) this.renderVerdict(data.check);
      if (!this.curatedRendered) this.renderCurated(data);
      this.setCitations(data.citations || []);
      const composed = Array.isArray(data.parts) && data.parts.length > 0;
      const kind = data.model === "rules" ? "rules" : composed ? "composed" : data.mode === "clauses" || data.ai_generated === false ? "clauses" : "answer";
      this.showAnswerFrame(kind, data.ai_generated !== false);
      if (composed) this.renderParts(data.parts, String(data.answer || ""));
      else this.renderAnswerText(String(data.answer || ""));
      this.foldCitationsIntoClauses();
      this.els.answerText.setAttribute("aria-busy", "false");
      this.renderRemoved(data.removed || []);
      if (data.notice) {
        this.els.sysNotice.textContent = String(data.notice);
        this.els.sysNotice.hidden = false;
      }
      this.answerId = data.answer_id || null;
      this.els.feedback.hidden = !this.answerId;
      this.setStatus(data.abstained ? "資料から回答できませんでした。関連する箇所を確認してください。" : "回答を表示しました。");
    }

    /* ---------- rendering ---------- */

    resetResult() {
      const e = this.els;
      for (const el of [e.error, e.sysNotice, e.verdict, e.answer, e.clauses, e.feedback, e.removed, e.citeBlock, e.thanks]) el.hidden = true;
      for (const el of [e.verdict, e.answerText, e.clauseList, e.citeList]) clear(el);
      e.feedbackControls.hidden = false;
      e.up.disabled = false;
      e.down.disabled = false;
      e.comment.value = "";
      this.citations = new Map();
      this.answerId = null;
      this.streamState = { done: false, rules: false, error: false, text: "" };
      this.resetCurated();
      if (e.dialog.open) e.dialog.close();
    }

    setStatus(text) {
      this.els.status.textContent = text;
    }

    showError(message) {
      this.els.error.textContent = message;
      this.els.error.hidden = false;
    }

    /** Show the answer block with a badge and notice that say honestly where the text came from. */
    showAnswerFrame(kind, aiGenerated) {
      const { badge, aiNotice, answer } = this.els;
      if (kind === "rules") {
        badge.className = "badge rules";
        badge.textContent = "規則による判定";
        aiNotice.textContent = RULES_NOTICE;
      } else if (kind === "composed") {
        badge.className = aiGenerated ? "badge ai" : "badge clauses";
        badge.textContent = aiGenerated ? "引用＋AI生成の一文" : "文書からの引用";
        aiNotice.textContent = COMPOSED_NOTICE;
      } else if (kind === "clauses" || !aiGenerated) {
        badge.className = "badge clauses";
        badge.textContent = "該当箇所のみ";
        aiNotice.textContent = `${CLAUSES_NOTICE}。必ず引用元の原文を確認してください。`;
      } else {
        badge.className = "badge ai";
        badge.textContent = "AI生成";
        aiNotice.textContent = AI_NOTICE;
      }
      answer.hidden = false;
    }

    /**
     * The composed answer: per part, the AI's lead (badged), a list heading, the verbatim pieces
     * with their citation buttons, notes, and — when a part is not covered — the nearest passage
     * under a plain label. The office's own rules come first; national guidance is labelled.
     */
    renderParts(parts, fallbackText) {
      const el = this.els.answerText;
      clear(el);
      if (!Array.isArray(parts) || parts.length === 0) {
        this.renderAnswerText(fallbackText);
        return;
      }
      const several = parts.length > 1;
      for (const part of parts) {
        const box = h("div", { class: "part", "data-shape": part.shape || "" });
        if (several) box.append(h("p", { class: "part-q" }, String(part.question || "")));
        const pieces = Array.isArray(part.pieces) ? part.pieces : [];
        if (!part.covered) {
          // A note saying where nothing was found (「本団体の規程には…」) replaces the general sentence.
          const notes = part.notes || [];
          const foundNothing = notes.filter((n) => String(n).endsWith("見つかりませんでした。"));
          for (const line of foundNothing.length ? foundNothing : ["ガイドラインに記載が見つかりませんでした。"]) {
            box.append(h("p", { class: "notfound" }, String(line)));
          }
          for (const note of notes) if (!foundNothing.includes(note)) box.append(h("p", { class: "part-note" }, `※${note}`));
          for (const pc of pieces) box.append(this.pieceBlock(pc, NEAREST_LABEL, "nearest"));
          el.append(box);
          continue;
        }
        if (part.lead) {
          const leadN = part.lead_n || (pieces.length ? pieces[0].n : null);
          box.append(h("p", { class: "lead" }, String(part.lead), leadN ? this.citeRef(leadN) : null, h("span", { class: "badge ai" }, "AI生成")));
        }
        if (part.heading) box.append(h("p", { class: "heading" }, String(part.heading)));
        if (part.shape === "comparison") {
          box.append(this.compareGrid(pieces));
        } else {
          const items = pieces.filter((pc) => pc.role === "item");
          const others = pieces.filter((pc) => pc.role !== "item");
          const hasLocal = pieces.some((pc) => pc.scope === "local" || pc.scope === "named");
          let guidanceShown = false;
          let localShown = false;
          for (const pc of others) {
            if (pc.scope === "local" && !localShown) {
              box.append(h("p", { class: "scope" }, LOCAL_LABEL));
              localShown = true;
            }
            if (hasLocal && pc.scope === "general" && !guidanceShown) {
              box.append(h("p", { class: "scope" }, GUIDANCE_LABEL));
              guidanceShown = true;
            }
            box.append(this.pieceBlock(pc, "", pc.scope === "local" ? "local" : ""));
          }
          if (items.length) box.append(this.itemList(items));
        }
        for (const note of part.notes || []) box.append(h("p", { class: "part-note" }, `※${note}`));
        el.append(box);
      }
    }

    citeRef(n) {
      return this.citations.has(n) ? this.citeButton(n, `[${n}]`, "cite") : document.createTextNode(`[${n}]`);
    }

    pieceBlock(pc, label, cls) {
      const where = pc.scope !== "general" && pc.label ? `${pc.doc_title || ""} ${pc.label}` : "";
      return h(
        "div",
        { class: `piece ${cls}`.trim(), "data-unit": pc.unit_id, "data-role": pc.role },
        label ? h("div", { class: "where" }, label) : null,
        `「${String(pc.text || "")}」`,
        this.citeRef(pc.n),
        where ? h("div", { class: "where" }, where) : null,
      );
    }

    itemList(items) {
      const list = h("ul", { class: "items" });
      const rows = items.map((pc) => h("li", { "data-unit": pc.unit_id }, String(pc.text || ""), this.citeRef(pc.n)));
      rows.forEach((li, i) => {
        if (i >= ITEMS_SHOWN) li.hidden = true;
        list.append(li);
      });
      if (items.length <= ITEMS_SHOWN) return list;
      const more = h("button", { type: "button", class: "link", "aria-expanded": "false" }, `すべて表示（全${items.length}件）`);
      more.addEventListener("click", () => {
        rows.forEach((li) => { li.hidden = false; });
        more.setAttribute("aria-expanded", "true");
        more.hidden = true;
      });
      return h("div", {}, list, more);
    }

    /** One column per document: side by side on a wide screen, stacked on a narrow one. */
    compareGrid(pieces) {
      const grid = h("div", { class: "compare" });
      const byDoc = new Map();
      for (const pc of pieces) {
        const key = pc.doc_title || "";
        if (!byDoc.has(key)) byDoc.set(key, []);
        byDoc.get(key).push(pc);
      }
      for (const [doc, list] of byDoc) {
        grid.append(h("div", { class: "col" }, h("h4", {}, doc), list.map((pc) => this.pieceBlock(pc, "", ""))));
      }
      return grid;
    }

    /** Answer text with each [n] that names a known citation turned into a button. */
    renderAnswerText(text) {
      const el = this.els.answerText;
      clear(el);
      const re = /\[(\d+)\]/g;
      let last = 0;
      let m;
      while ((m = re.exec(text)) !== null) {
        const n = Number(m[1]);
        if (!this.citations.has(n)) continue; // unknown numbers stay plain text
        if (m.index > last) el.append(document.createTextNode(text.slice(last, m.index)));
        el.append(this.citeButton(n, `[${n}]`, "cite"));
        last = re.lastIndex;
      }
      if (last < text.length) el.append(document.createTextNode(text.slice(last)));
    }

    citeButton(n, label, cls) {
      const c = this.citations.get(n);
      const desc = `引用${n}: ${c.doc_title || ""} ${sectionPath(c.section_path)}`.trim();
      // A real <button>: Enter and Space activate it without extra key handling.
      return h("button", { type: "button", class: cls, "aria-label": desc, "aria-haspopup": "dialog", "data-n": n, onclick: (e) => this.openSource(c, `引用 [${n}]`, e.currentTarget) }, label);
    }

    setCitations(list) {
      this.citations = new Map();
      clear(this.els.citeList);
      for (const c of list) {
        if (!c || typeof c.n !== "number") continue;
        this.citations.set(c.n, c);
      }
      for (const [n, c] of [...this.citations].sort((a, b) => a[0] - b[0])) {
        const path = sectionPath(c.section_path);
        this.els.citeList.append(
          h("li", { value: n }, this.citeButton(n, `[${n}] ${c.doc_title || ""}`, "link"), path ? h("div", { class: "meta" }, path) : null),
        );
      }
      this.els.citeBlock.hidden = this.citations.size === 0;
    }

    renderClauses(hits) {
      const list = this.els.clauseList;
      clear(list);
      if (!Array.isArray(hits)) return;
      for (const hit of hits) {
        const path = sectionPath(hit.section_path);
        const excerpt = String(hit.text || "");
        const short = excerpt.length > 160 ? `${excerpt.slice(0, 160)}…` : excerpt;
        const item = { ...hit, quote: hit.text };
        list.append(
          h(
            "li",
            {},
            h("div", { class: "item-title" }, hit.doc_title || hit.doc_id || ""),
            path ? h("div", { class: "meta" }, path) : null,
            h("p", { class: "excerpt" }, short),
            h("button", {
              type: "button",
              class: "link",
              "aria-haspopup": "dialog",
              "aria-label": `原文を見る: ${hit.doc_title || ""} ${path}`.trim(),
              "data-unit": hit.id,
              onclick: (e) => this.openSource(item, `関連する箇所 ${hit.rank || ""}`.trim(), e.currentTarget),
            }, "原文を見る"),
          ),
        );
      }
      this.els.clauses.hidden = hits.length === 0;
    }

    /**
     * Clauses-only and abstaining answers cite exactly the ranked clauses, without [n] in the text.
     * Listing them twice is noise, so the clause list stands in for the citation list; its buttons
     * take the citation numbers.
     */
    foldCitationsIntoClauses() {
      if (this.els.answerText.querySelector("button.cite") || this.citations.size === 0) return;
      const buttons = new Map([...this.els.clauseList.querySelectorAll("button[data-unit]")].map((b) => [b.dataset.unit, b]));
      const all = [...this.citations.values()];
      if (!all.every((c) => buttons.has(c.unit_id))) return;
      for (const c of all) buttons.get(c.unit_id).dataset.n = String(c.n);
      this.els.citeBlock.hidden = true;
    }

    renderRemoved(removed) {
      const n = Array.isArray(removed) ? removed.length : 0;
      this.els.removed.textContent = n ? `資料で裏付けられなかった文を ${n} 件削除しました。` : "";
      this.els.removed.hidden = n === 0;
    }

    /** The confidentiality verdict card: verdict (symbol + text + colour), class, conditions, what is missing, the table's cloud rule. */
    renderVerdict(check) {
      const card = this.els.verdict;
      clear(card);
      if (!check || !check.verdict) return;
      const style = VERDICTS[check.verdict] || VERDICTS["判断できない"];
      card.className = `verdict ${style.cls}`;
      card.setAttribute("data-verdict", check.verdict);
      card.append(
        h("p", { class: "label" }, h("span", { class: "symbol", "aria-hidden": "true" }, style.symbol), `判定: ${check.verdict}`),
      );
      const dl = h("dl");
      const add = (term, value) => {
        if (value === null || value === undefined || (Array.isArray(value) && value.length === 0) || value === "") return;
        const body = Array.isArray(value) ? h("ul", {}, value.map((v) => h("li", {}, String(v)))) : String(value);
        dl.append(h("dt", {}, term), h("dd", {}, body));
      };
      const row = check.table_row;
      if (check.decided_by === "local_policy") {
        const own = (check.citations || [])[0];
        add("判定の根拠", own ? `本団体の規程（${own.doc_title || ""} ${own.label || ""}）` : "本団体の規程");
      } else if (check.decided_by === "table") {
        add("判定の根拠", "国の機密性分類表（総務省資料）");
      }
      add("機密性分類", check.class ? `機密性${check.class}${row && row.label ? `（${row.label}）` : ""}` : "不明");
      add("対象の情報", check.information);
      add("条件", check.conditions);
      add("理由", check.reasons);
      add("確認が必要な点", check.missing);
      if (Array.isArray(check.cases) && check.cases.length) {
        add("想定される場合ごとの判定", check.cases.map((c) => `${c.service}: ${c.verdict}${c.conditions && c.conditions.length ? `（${c.conditions.join("、")}）` : ""}`));
      }
      if (row && row.cloud_rule) add(`分類表（${row.class_id}）のクラウド利用の扱い`, row.cloud_rule);
      card.append(dl);
      card.hidden = false;
    }

    /* ---------- registered answers (登録済みの回答) ---------- */

    /** The two blocks, made on first use: the registered answer above the composed one, similar questions below it. */
    curatedSlots() {
      if (!this.els.curated) {
        this.shadowRoot.append(h("style", {}, CURATED_STYLE));
        this.els.curated = h("section", { class: "curated", hidden: true, "aria-label": "登録済みの回答" });
        this.els.similar = h("section", { class: "similar", hidden: true, "aria-label": "よく似た質問" });
        this.els.answer.before(this.els.curated);
        this.els.answer.after(this.els.similar);
      }
      return this.els;
    }

    resetCurated() {
      this.curatedRendered = false;
      if (!this.els.curated) return;
      for (const el of [this.els.curated, this.els.similar]) {
        clear(el);
        el.hidden = true;
      }
    }

    /**
     * {curated, similar}: the office's registered answer with its date, author and citation buttons — never
     * badged as AI — and the similar registered questions, each a button that asks it.
     */
    renderCurated(data) {
      this.resetCurated();
      this.curatedRendered = true;
      const { curated, similar } = this.curatedSlots();
      const item = data && data.curated;
      if (item && typeof item === "object") {
        const cites = (Array.isArray(item.citations) ? item.citations : []).map((c, i) =>
          h("button", {
            type: "button",
            class: "cite",
            "aria-haspopup": "dialog",
            "aria-label": `登録済みの回答の引用${i + 1}: ${c.doc_title || ""} ${sectionPath(c.section_path)}`.trim(),
            "data-unit": c.unit_id,
            onclick: (e) => this.openSource(c, `登録済みの回答の引用 [${i + 1}]`, e.currentTarget),
          }, `[${i + 1}] ${c.doc_title || ""}${c.label ? ` ${c.label}` : ""}`),
        );
        const meta = [item.date ? `登録日 ${item.date}` : "", item.author ? `登録 ${item.author}` : ""].filter(Boolean).join("・");
        curated.append(
          h("div", { class: "answer-head" }, h("h3", {}, "登録済みの回答"), h("span", { class: "badge registered" }, "登録済み")),
          h("p", { class: "meta" }, `登録された質問: ${String(item.question || "")}`),
          h("p", { class: "curated-text", "data-curated": String(item.id || "") }, String(item.answer || "")),
          cites.length ? h("div", { class: "cites" }, h("span", { class: "meta" }, "引用元:"), cites) : null,
          meta ? h("p", { class: "meta" }, meta) : null,
          h("p", { class: "notice" }, CURATED_NOTICE),
        );
        curated.hidden = false;
      }
      const list = (Array.isArray(data && data.similar) ? data.similar : []).filter((s) => s && s.question);
      if (list.length) {
        similar.append(
          h("h3", {}, "よく似た質問"),
          h("ul", {}, list.map((s) => h("li", {}, h("button", {
            type: "button",
            class: "link",
            "data-curated": String(s.id || ""),
            onclick: () => this.askSimilar(String(s.question)),
          }, String(s.question))))),
        );
        similar.hidden = false;
      }
    }

    askSimilar(question) {
      this.els.question.value = question;
      this.submit();
    }

    /* ---------- source dialog ---------- */

    openSource(item, heading, opener) {
      const e = this.els;
      this.lastOpener = opener;
      e.dTitle.textContent = heading;
      e.dDoc.textContent = item.doc_title || item.doc_id || "";
      e.dPath.textContent = sectionPath(item.section_path) || "（なし）";
      e.dSource.textContent = sourceLabel(item) || "（不明）";
      e.dQuote.textContent = String(item.quote || ""); // verbatim; white-space: pre-wrap keeps line breaks
      if (e.dialog.open) e.dialog.close();
      e.dialog.showModal();
      e.dialog.querySelector("button.close").focus();
    }

    /* ---------- feedback ---------- */

    async sendFeedback(rating) {
      if (!this.answerId) return;
      const e = this.els;
      e.up.disabled = true;
      e.down.disabled = true;
      try {
        const post = () =>
          fetch(`${this.endpoint}/v1/feedback`, {
            method: "POST",
            headers: this.headers(),
            body: JSON.stringify({ answer_id: this.answerId, rating, comment: e.comment.value.trim() }),
          });
        let res = await post();
        if (res.status === 404) {
          // The server logs the answer just after the stream ends; a very quick click can beat it once.
          await new Promise((resolve) => setTimeout(resolve, 1500));
          res = await post();
        }
        if (!res.ok) throw await errorFromResponse(res);
        e.feedbackControls.hidden = true;
        e.thanks.textContent = "ご意見ありがとうございました。今後の改善に役立てます。";
        e.thanks.hidden = false;
        e.thanks.setAttribute("tabindex", "-1");
        e.thanks.focus(); // the focused button was just hidden; keep keyboard users in place
      } catch (err) {
        e.up.disabled = false;
        e.down.disabled = false;
        this.showError(err instanceof ApiError ? err.message : "フィードバックを送信できませんでした。");
      }
    }
  }

  customElements.define(TAG, GuidelineQA);
})();
