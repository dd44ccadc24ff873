// A gateway the client tests answer by hand (no packages, no network).

/** A gateway the test answers by hand: every poll waits until the test responds or the client aborts. */
export function scriptedGateway() {
  const polls = [];
  let arrived = null;
  const fetch = (url, init) => new Promise((resolve, reject) => {
    const poll = { url: new URL(url), headers: init.headers ?? {}, resolve, aborted: false };
    init.signal.addEventListener("abort", () => {
      poll.aborted = true;
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
    polls.push(poll);
    arrived?.();
  });
  return {
    fetch,
    polls,
    /** The next poll the client sends that is still waiting (bounded). */
    async next() {
      for (let waited = 0; waited < 200; waited++) {
        const open = polls.filter((poll) => !poll.aborted && !poll.answered);
        if (open.length > 0) return open[open.length - 1];
        await new Promise((resolve) => { arrived = resolve; setTimeout(resolve, 10); });
      }
      throw new Error("the client sent no poll");
    },
    answer(poll, body, status = 200, headers = {}) {
      poll.answered = true;
      poll.resolve(new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers }));
    },
  };
}
