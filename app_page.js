// refocus: the page's own script, run once at page load by app.py (``demo.load(None, js=...)``).
//
// Why it exists: Gradio drops a click that arrives while the previous one still renders, and
// re-runs a deferred click with the FIRST click's position. So the page records the latest
// click on the photo or the preview itself (as fractions of the picture), the click events
// read it when they start (``window.refocus.click``), and a ring shows the focus at once,
// before any render returns. The ring is drawn over the pictures, never into them, so a
// downloaded preview has no marker in it.
() => {
  if (window.refocus) return [];
  const IMAGES = ["#photo img", "#result img"];
  // ``answered`` counts the server's answers shown (``show``): a benchmark or test waits on it,
  // since a click at the same depth gives the same preview and so no new picture to wait for.
  // ``stamp`` counts the preview events sent (app.py's LAST_CLICK_JS and STAMP_JS): the server may
  // start them out of order, and keeps the lens settings of the latest.
  const state = { click: {}, seq: 0, focus: null, answered: 0, stamp: 0 };
  window.refocus = state;
  // Styles live here, not in launch(css=...), so every way of serving the app gets them.
  const style = document.createElement("style");
  style.textContent = `
    .refocus-ring { position: absolute; width: 30px; height: 30px; margin: -15px 0 0 -15px;
      border-radius: 50%; border: 2px solid #fff; pointer-events: none; z-index: 5;
      box-shadow: 0 0 0 1.5px rgba(0,0,0,.8), inset 0 0 0 1.5px rgba(0,0,0,.8); }`;
  document.head.appendChild(style);

  // The picture inside an <img>: fitted, centred, never enlarged (Gradio's click geometry).
  function picture(img) {
    const r = img.getBoundingClientRect();
    const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight, 1);
    const w = img.naturalWidth * s, h = img.naturalHeight * s;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, width: w, height: h };
  }

  // A ring (white, dark outlines) around the focus on both pictures; its centre stays clear.
  function placeRings() {
    for (const selector of IMAGES) {
      const img = document.querySelector(selector);
      if (!img) continue;
      const box = img.parentElement;
      let ring = box.querySelector(":scope > .refocus-ring");
      if (!ring) {
        if (getComputedStyle(box).position === "static") box.style.position = "relative";
        ring = document.createElement("div");
        ring.className = "refocus-ring";
        box.appendChild(ring);
      }
      const shown = state.focus && img.naturalWidth ? "block" : "none";
      if (ring.style.display !== shown) ring.style.display = shown;
      if (shown === "none") continue;
      const p = picture(img), b = box.getBoundingClientRect();
      const left = `${p.left - b.left + state.focus.fx * p.width}px`;
      const top = `${p.top - b.top + state.focus.fy * p.height}px`;
      if (ring.style.left !== left) ring.style.left = left;
      if (ring.style.top !== top) ring.style.top = top;
    }
  }

  // The server's focus (a new photo's auto focus, undo, redo); older than the latest click: ignored.
  state.show = (focus) => {
    state.answered += 1;
    if (!focus) state.focus = null;
    else if (focus.seq === null || focus.seq === undefined || focus.seq >= state.seq) state.focus = focus;
    placeRings();
  };

  document.addEventListener("click", (ev) => {
    const img = ev.target.closest ? ev.target.closest(IMAGES.join(", ")) : null;
    if (!img || !img.naturalWidth) return;
    const p = picture(img);
    const fx = (ev.clientX - p.left) / p.width, fy = (ev.clientY - p.top) / p.height;
    if (fx < 0 || fy < 0 || fx >= 1 || fy >= 1) return;
    state.seq += 1;
    const name = img.closest("#photo") ? "photo" : "result";
    state.click[name] = { fx: fx, fy: fy, seq: state.seq };
    state.focus = state.click[name];
    placeRings();
    // On a phone the preview is below the controls: bring it into view so a tap shows its effect.
    if (name === "photo" && window.innerWidth < 700) {
      document.querySelector("#result")?.scrollIntoView({ behavior: "smooth", block: "center" });
    }
  }, true);

  // A slider's number box applies its value when it loses focus; Enter should apply it too, and
  // the box keeps the keyboard focus (to type the next value).
  const isNumberBox = (el) => el && el.matches && el.matches("input[type=number]");
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || !isNumberBox(ev.target)) return;
    ev.target.blur();
    ev.target.focus();
  }, true);
  // Gradio applies the box's value on every blur, changed or not: after Enter the next click
  // elsewhere (on the preview, say) would start a needless render that the click's own waits for
  // (the server runs a tab's preview events one after another). So a blur with the value the box
  // had when it took the focus is kept from Gradio (this capturing listener runs before the box's own).
  const valueAtFocus = new WeakMap();
  document.addEventListener("focus", (ev) => {
    if (isNumberBox(ev.target)) valueAtFocus.set(ev.target, ev.target.value);
  }, true);
  document.addEventListener("blur", (ev) => {
    if (isNumberBox(ev.target) && valueAtFocus.get(ev.target) === ev.target.value) ev.stopPropagation();
  }, true);

  // New pictures load and layouts change (tabs, resizing): keep the rings on the focus.
  setInterval(placeRings, 150);
  return [];
}
