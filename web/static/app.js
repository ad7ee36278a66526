// The little the pages need beyond HTML: follow a job's progress, and say a form is
// being sent. Every page works without it (the progress page refreshes itself).
"use strict";

function followJob(box) {
  const url = box.dataset.jobProgress;
  const bar = box.querySelector("progress");
  const stage = box.querySelector(".stage");
  let failures = 0;
  const poll = async () => {
    let job;
    try {
      const response = await fetch(url, {cache: "no-store"});
      job = await response.json();
    } catch (error) {
      // A server restarting answers again soon; one that never does is said once.
      failures += 1;
      stage.textContent = failures < 30
        ? "the server does not answer; trying again…"
        : "the server stopped answering: reload the page once it runs again";
      if (failures < 30) setTimeout(poll, 2000);
      return;
    }
    failures = 0;
    if (job.state === "done") {
      window.location.assign(job.next);
      return;
    }
    if (job.state === "failed" || job.state === "gone") {
      const message = document.createElement("p");
      message.className = "error";
      message.setAttribute("role", "alert");
      message.textContent = job.error || "this work is no longer known: start it again";
      box.replaceChildren(message);
      return;
    }
    if (job.share === null) {
      bar.removeAttribute("value");
      stage.textContent = job.stage;
    } else {
      bar.value = job.share;
      stage.textContent = `${job.stage} (${Math.round(job.share * 100)}%)`;
    }
    setTimeout(poll, 500);
  };
  poll();
}

function markBusy(form) {
  form.addEventListener("submit", () => {
    // After the browser has read the button pressed (its name and value are sent).
    setTimeout(() => {
      for (const button of form.querySelectorAll("button")) button.disabled = true;
      form.classList.add("busy");
    }, 0);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-job-progress]").forEach((box) => {
    if (box.querySelector("progress")) followJob(box);
  });
  document.querySelectorAll("form[data-busy]").forEach(markBusy);
});
