// A minimal graphql-transport-ws client (https://github.com/enisdenjo/graphql-ws,
// PROTOCOL.md): connection_init with the API key, wait for connection_ack, then
// subscribe / next / error / complete, ping / pong both ways. On a lost connection it
// reconnects with exponential backoff and re-subscribes every open subscription;
// `onState` hears "connecting", "live", "reconnecting" and "unauthorized".

const PROTOCOL = "graphql-transport-ws";
const ACK_TIMEOUT_MS = 10_000;
const PING_EVERY_MS = 15_000;
const PONG_TIMEOUT_MS = 10_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
// Close codes after which retrying with the same key cannot help.
const AUTH_CLOSE_CODES = new Set([4401, 4403]);

export class SubscriptionClient {
  /**
   * @param {string} url ws:// or wss:// URL of the GraphQL endpoint
   * @param {{connectionParams: () => object, onState?: (state: string, info?: object) => void}} options
   */
  constructor(url, { connectionParams, onState }) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onState = onState || (() => {});
    this.subs = new Map(); // id -> {query, variables, sink}
    this.nextId = 1;
    this.ws = null;
    this.acked = false;
    this.attempt = 0;
    this.everAcked = false;
    this.stopped = false;
    this.reconnectTimer = null;
    this.ackTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this._onOnline = () => this.reconnectNow();
    window.addEventListener("online", this._onOnline);
  }

  /**
   * Starts a subscription; `sink.next(payload)` gets each `{data, errors}` result.
   * Returns a function that stops it.
   */
  subscribe(query, variables, sink) {
    const id = String(this.nextId++);
    this.subs.set(id, { query, variables, sink });
    if (this.acked) this._sendSubscribe(id);
    else this._ensureConnected();
    return () => {
      if (!this.subs.delete(id)) return;
      if (this.acked) this._send({ id, type: "complete" });
    };
  }

  /** Skips the backoff wait (the browser came back online, the user asked). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this._connect();
  }

  /** Closes for good: no reconnect, subscriptions dropped. */
  close() {
    this.stopped = true;
    this.subs.clear();
    clearTimeout(this.reconnectTimer);
    this._clearConnectionTimers();
    window.removeEventListener("online", this._onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "bye");
    }
  }

  _ensureConnected() {
    if (!this.stopped && !this.ws && !this.reconnectTimer) this._connect();
  }

  _connect() {
    this.onState(this.everAcked || this.attempt ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, PROTOCOL);
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.acked = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this._send({ type: "connection_init", payload: this.connectionParams() });
      this.ackTimer = setTimeout(() => ws.close(4408, "Connection acknowledgement timeout"), ACK_TIMEOUT_MS);
    };
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onclose = (event) => this._onClose(ws, event);
    ws.onerror = () => {}; // a close event always follows
  }

  _onMessage(ws, event) {
    if (ws !== this.ws) return;
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      ws.close(4400, "Invalid message");
      return;
    }
    this._alive();
    const sub = msg.id !== undefined ? this.subs.get(msg.id) : undefined;
    switch (msg.type) {
      case "connection_ack": {
        clearTimeout(this.ackTimer);
        const reconnected = this.everAcked;
        this.acked = true;
        this.everAcked = true;
        this.attempt = 0;
        for (const id of this.subs.keys()) this._sendSubscribe(id);
        this._startHeartbeat();
        this.onState("live", { reconnected });
        break;
      }
      case "ping":
        this._send({ type: "pong" });
        break;
      case "pong":
        break;
      case "next":
        if (sub) sub.sink.next(msg.payload);
        break;
      case "error":
        if (sub) {
          this.subs.delete(msg.id);
          sub.sink.error?.(msg.payload);
        }
        break;
      case "complete":
        if (sub) {
          this.subs.delete(msg.id);
          sub.sink.complete?.();
        }
        break;
      default:
        ws.close(4400, `Unexpected message type ${msg.type}`);
    }
  }

  _onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.acked = false;
    this._clearConnectionTimers();
    if (this.stopped) return;
    if (AUTH_CLOSE_CODES.has(event.code)) {
      this.onState("unauthorized", { code: event.code, reason: event.reason });
      return;
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.onState("reconnecting", { delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this._connect();
    }, delay);
  }

  _startHeartbeat() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (!this.acked) return;
      this._send({ type: "ping" });
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.ws?.close(4408, "No pong"), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  // Any message proves the connection alive.
  _alive() {
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  _clearConnectionTimers() {
    clearTimeout(this.ackTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.ackTimer = this.pingTimer = this.pongTimer = null;
  }

  _sendSubscribe(id) {
    const { query, variables } = this.subs.get(id);
    this._send({ id, type: "subscribe", payload: { query, variables } });
  }

  _send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }
}
