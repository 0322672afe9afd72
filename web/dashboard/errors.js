// What the dashboard does with a failed request: a refused key signs out (the handler
// app.js registers), anything else is a toast.

import { toast } from "./dom.js";

let unauthorized = () => {};

/** `handler(message)` runs when a request's API key was refused. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function handleError(err, context) {
  if (err?.unauthorized) {
    unauthorized(err.message);
    return;
  }
  toast(context ? `${context}: ${err.message}` : err.message, "error");
}
