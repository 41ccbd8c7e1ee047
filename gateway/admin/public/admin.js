/*
 * Copy buttons: `<button data-copy="#element-id">` copies that element's text (a `data-copy` value
 * without `#` is copied as it is), then shows "Copied" on the button and in the nearest
 * `[data-copy-status]` (an aria-live region). Without the Clipboard API (a page not served over
 * HTTPS or localhost) the text is selected instead, for Ctrl+C.
 */
(() => {
  const COPIED_CLASSES = ["border-emerald-500", "text-emerald-700"];

  const selectText = (element) => {
    if (element === null) return;
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    if (selection === null) return;
    selection.removeAllRanges();
    selection.addRange(range);
  };

  const announce = (button, message, copied) => {
    let scope = button.parentElement;
    while (scope !== null && scope.querySelector("[data-copy-status]") === null) scope = scope.parentElement;
    const status = scope?.querySelector("[data-copy-status]") ?? null;
    if (status !== null) status.textContent = message;
    if (!copied) return;
    if (button.dataset.copyLabel === undefined) button.dataset.copyLabel = button.textContent ?? "";
    button.textContent = "Copied";
    button.classList.add(...COPIED_CLASSES);
    window.clearTimeout(Number(button.dataset.copyTimer ?? "0"));
    button.dataset.copyTimer = String(
      window.setTimeout(() => {
        button.textContent = button.dataset.copyLabel ?? "Copy";
        button.classList.remove(...COPIED_CLASSES);
      }, 2000),
    );
  };

  document.addEventListener("click", (event) => {
    const target = event.target;
    const button = target instanceof Element ? target.closest("[data-copy]") : null;
    if (button === null) return;
    const spec = button.getAttribute("data-copy") ?? "";
    const source = spec.startsWith("#") ? document.querySelector(spec) : null;
    const text = spec.startsWith("#") ? (source?.textContent ?? "").trim() : spec;
    if (text === "") return;
    if (navigator.clipboard === undefined || !window.isSecureContext) {
      selectText(source);
      announce(button, "Selected: press Ctrl+C (⌘C on a Mac) to copy.", false);
      return;
    }
    navigator.clipboard.writeText(text).then(
      () => announce(button, "Copied to the clipboard.", true),
      () => {
        selectText(source);
        announce(
          button,
          "The browser refused to copy: the text is selected, press Ctrl+C (⌘C) to copy.",
          false,
        );
      },
    );
  });
})();
