"""Drive the host's own web UI in headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright).

No browser is downloaded (never ``playwright install``): ``executable_path`` points at the system one.
``ComfyBrowser`` opens the UI, loads a UI-format workflow the way drag-and-drop does
(``app.loadGraphData``), reports missing node types, error dialogs, widget values the UI did not accept and
console errors, asks the UI for its API prompt (``app.graphToPrompt()``) and takes screenshots.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} missing (scripts/setup_env.sh installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (scripts/setup_env.sh installs it)"
    return None


# Runs in the page before loadGraphData: records what the UI would complain about.
_INSTALL_WATCHERS = """() => {
    window.__mc = {missing: [], dialogs: []};
    const original = window.app.showMissingNodesError?.bind(window.app);
    if (original) {
        window.app.showMissingNodesError = (types, ...rest) => {
            window.__mc.missing.push(...types.map(t => (typeof t === 'string' ? t : t.type || String(t))));
            return original(types, ...rest);
        };
    }
}"""

# Node types of a UI-format workflow that the page's LiteGraph does not know.
_UNKNOWN_TYPES = """(wf) => wf.nodes.map(n => n.type).filter(t => !(t in window.LiteGraph.registered_node_types))"""

# Visible modal dialogs and error notices (legacy UI: .comfy-modal; current frontend: PrimeVue .p-dialog, and
# ComfyUI 0.28.2's error overlay, e.g. "Some nodes are missing and need to be installed").
_VISIBLE_DIALOGS = """() => Array.from(document.querySelectorAll(
        '.comfy-modal, .p-dialog, [data-testid="error-overlay"]'))
    .filter(el => el.offsetParent !== null || getComputedStyle(el).display !== 'none')
    .map(el => el.innerText.trim()).filter(Boolean)"""

# Combo widgets whose value is not one of its options, and nodes whose widget values were dropped.
_WIDGET_PROBLEMS = """(wf) => {
    const problems = [];
    const byId = new Map(wf.nodes.map(n => [n.id, n]));
    for (const node of window.app.graph._nodes) {
        for (const w of node.widgets || []) {
            const values = w.options?.values;
            if (w.type === 'combo' && Array.isArray(values) && !values.includes(w.value))
                problems.push(`${node.type}#${node.id}.${w.name}: '${w.value}' not in ${JSON.stringify(values)}`);
        }
        const saved = byId.get(node.id)?.widgets_values;
        const live = (node.widgets || []).filter(w => w.serializeValue === undefined || w.options?.serialize !== false);
        if (Array.isArray(saved) && saved.length > live.length)
            problems.push(`${node.type}#${node.id}: ${saved.length} saved widget values, ${live.length} widgets`);
    }
    return problems;
}"""


class ComfyBrowser:
    """``with ComfyBrowser(url) as b:`` -> a page on the host's UI with ``window.app`` ready."""

    def __init__(self, url: str, viewport=(1280, 800), timeout_ms: int = 60_000):
        self.url = url
        self.viewport = {"width": viewport[0], "height": viewport[1]}
        self.timeout_ms = timeout_ms
        self.console_errors: list[str] = []
        self.page = None

    def __enter__(self) -> "ComfyBrowser":
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            self.page = self._browser.new_page(viewport=self.viewport)
            self.page.set_default_timeout(self.timeout_ms)
            self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(
                f"{m.text} [{(m.location or {}).get('url', '')}]"))
            self.page.on("pageerror", lambda e: self.console_errors.append(f"pageerror: {e}"))
            self.page.goto(self.url, wait_until="domcontentloaded")
            self.page.wait_for_function("() => window.app && window.app.graph")
            self.close_start_dialogs()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for closer in (getattr(self, "_browser", None), getattr(self, "_pw", None)):
            if closer is not None:
                try:
                    closer.close() if closer is not getattr(self, "_pw", None) else closer.stop()
                except Exception:
                    pass

    def close_start_dialogs(self, settle_ms: int = 800) -> None:
        """A current ComfyUI frontend opens a template browser on first start: close it (Escape)."""
        self.page.wait_for_timeout(settle_ms)
        for _ in range(3):
            if not self.page.evaluate(_VISIBLE_DIALOGS):
                return
            self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(300)

    def load_workflow(self, workflow: dict) -> dict:
        """Load a UI-format workflow as drag-and-drop does; returns what the UI complained about.

        Keys: ``missing`` (node types), ``dialogs`` (texts of visible dialogs), ``widgets`` (widget values
        the UI did not accept), ``console`` (console errors raised while loading).
        """
        errors_before = len(self.console_errors)
        unknown = self.page.evaluate(_UNKNOWN_TYPES, workflow)
        self.page.evaluate(_INSTALL_WATCHERS)
        self.page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
        self.page.wait_for_timeout(300)  # let dialogs and node sizing settle
        missing = sorted(set(unknown) | set(self.page.evaluate("() => window.__mc.missing")))
        return {"missing": missing, "dialogs": self.page.evaluate(_VISIBLE_DIALOGS),
                "widgets": self.page.evaluate(_WIDGET_PROBLEMS, workflow),
                "console": self.console_errors[errors_before:]}

    def graph_to_prompt(self) -> dict:
        """The API prompt the UI itself would queue (``(await app.graphToPrompt()).output``)."""
        return self.page.evaluate("async () => (await window.app.graphToPrompt()).output")

    def serialized_graph(self) -> dict:
        """The loaded graph in UI format (what "Save" in the menu writes)."""
        return self.page.evaluate("() => window.app.graph.serialize()")

    def client_id(self) -> str | None:
        """The page's websocket client id: queue with it and the UI shows the outputs."""
        return self.page.evaluate("() => window.sessionStorage.getItem('clientId')")

    def wait_for_output(self, node_id: str, timeout_ms: int = 60_000) -> None:
        """Wait until the UI has received the ``executed`` output of one node."""
        self.page.wait_for_function("(id) => !!window.app.nodeOutputs?.[id]", arg=str(node_id),
                                    timeout=timeout_ms)

    def screenshot(self, path, fit: bool = True) -> Path:
        """Save a PNG of the page; ``fit`` first zooms the canvas so the whole graph is visible."""
        if fit:
            self.page.evaluate("""() => {
                const c = window.app.canvas, nodes = window.app.graph._nodes;
                if (!nodes.length) return;
                const x0 = Math.min(...nodes.map(n => n.pos[0])), y0 = Math.min(...nodes.map(n => n.pos[1] - 30));
                const x1 = Math.max(...nodes.map(n => n.pos[0] + n.size[0]));
                const y1 = Math.max(...nodes.map(n => n.pos[1] + n.size[1]));
                const menu = document.querySelector('.comfy-menu')?.getBoundingClientRect();
                const full = c.canvas.width / (window.devicePixelRatio || 1);
                const w = menu && menu.left > full / 2 ? menu.left : full;  // leave the side menu visible
                const h = c.canvas.height / (window.devicePixelRatio || 1);
                const scale = Math.min(1.2, 0.9 * w / (x1 - x0), 0.85 * h / (y1 - y0));
                c.ds.scale = scale;
                c.ds.offset = [(w / scale - (x1 - x0)) / 2 - x0, (h / scale - (y1 - y0)) / 2 - y0 + 20];
                c.setDirty(true, true); c.draw(true, true);
            }""")
            self.page.wait_for_timeout(300)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path


def load_json(path) -> dict:
    return json.loads(Path(path).read_text())
