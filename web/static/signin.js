// @ts-check
// The sign-in form, for a server started with --access-token: the token is posted as JSON
// to /login, whose answer sets the HttpOnly access cookie; it never goes into the address
// bar or the history. The page shows the form when the server says this browser has no
// cookie (data-access on <body>), or when the API answers 401.

import { find } from "./view.js";

const WRONG = "Wrong token: check it and try again.";

export class SignIn {
  /**
   * @param {HTMLFormElement} form the #sign-in form
   * @param {() => void} onSignedIn called once the cookie is set
   */
  constructor(form, onSignedIn) {
    this.form = form;
    this.input = find(form, "#access-token", HTMLInputElement);
    this.error = find(form, "#sign-in-error", HTMLElement);
    this.onSignedIn = onSignedIn;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
  }

  /** @returns {boolean} whether the form is waiting for the token */
  get shown() {
    return !this.form.hidden;
  }

  /** @param {string} [message] why the token is asked for */
  show(message) {
    this.form.hidden = false;
    this.say(message ?? "");
    this.input.focus();
  }

  /** @param {string} message */
  say(message) {
    this.error.textContent = message;
    this.error.hidden = message === "";
  }

  async submit() {
    const token = this.input.value.trim();
    if (token === "") {
      this.say("Paste the access token the server was started with.");
      return;
    }
    let response;
    try {
      response = await fetch("/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ token }),
        credentials: "same-origin",
      });
    } catch {
      this.say("Could not reach the server. Check the connection and try again.");
      return;
    }
    if (response.status === 204) {
      this.input.value = "";
      this.form.hidden = true;
      this.say("");
      this.onSignedIn();
      return;
    }
    let message = response.status === 401 ? WRONG : `The server answered ${response.status}.`;
    try {
      const body = await response.json();
      if (typeof body?.error?.message === "string") message = body.error.message;
    } catch {
      // Not JSON: keep the message above.
    }
    this.say(message);
    this.input.select();
  }
}

/**
 * What the page was served with: "sign-in" (no cookie), "wrong" (after /?token=WRONG),
 * or nothing to do.
 * @param {HTMLElement} body
 * @returns {string | null} the message to show with the form, or null for no form
 */
export function initialSignIn(body) {
  const access = body.dataset.access;
  if (access === "wrong") return WRONG;
  if (access === "sign-in") return "";
  return null;
}
