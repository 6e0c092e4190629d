// The console's one script (no inline script: the CSP forbids it). Delegated handlers, so that
// parts htmx swaps in work too.
"use strict";

document.addEventListener("click", async (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.dataset.reveal) {
    const field = document.getElementById(target.dataset.reveal);
    const shown = field.type === "text";
    field.type = shown ? "password" : "text";
    target.textContent = shown ? "Reveal" : "Hide";
  } else if (target.dataset.copy) {
    const field = document.getElementById(target.dataset.copy);
    try {
      await navigator.clipboard.writeText(field.value);
      target.textContent = "Copied";
    } catch (err) {
      target.textContent = "Copy failed";
    }
  } else if (target.dataset.openDialog) {
    document.getElementById(target.dataset.openDialog).showModal();
  } else if (target.dataset.closeDialog) {
    document.getElementById(target.dataset.closeDialog).close();
  }
});

// A confirmation field enables its button only while it holds exactly the expected text.
document.addEventListener("input", (event) => {
  const field = event.target;
  if (field.dataset && field.dataset.mustEqual !== undefined) {
    document.getElementById(field.dataset.enables).disabled = field.value !== field.dataset.mustEqual;
  }
});

document.addEventListener("change", (event) => {
  const field = event.target;
  if (field.dataset && field.dataset.autosubmit !== undefined) field.form.submit();
  if (field.name === "password_choice") {
    document.getElementById("db_pass").required = field.value === "set";
  }
});
