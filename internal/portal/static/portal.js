// Follows an instance's creation without a reload: every two seconds, the progress block is
// fetched again and replaced (its aria-live region tells screen readers what changed).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const block = document.querySelector("[data-refresh]");
  if (!block) return;
  setInterval(async () => {
    const resp = await fetch(block.dataset.refresh, { credentials: "same-origin" });
    if (resp.ok) block.innerHTML = await resp.text();
  }, 2000);
});
