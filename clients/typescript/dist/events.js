// A small typed event emitter that runs the same in browsers and Node (no
// `node:events`). A listener that throws does not break the client: the
// error is re-thrown on its own task, where the host reports it.
export class Emitter {
    constructor() {
        this.listeners = new Map();
    }
    /** Calls `fn` on every `event`; returns a function that removes it. */
    on(event, fn) {
        let set = this.listeners.get(event);
        if (!set) {
            set = new Set();
            this.listeners.set(event, set);
        }
        set.add(fn);
        return () => this.off(event, fn);
    }
    /** Calls `fn` on the next `event` only. */
    once(event, fn) {
        const off = this.on(event, (payload) => {
            off();
            fn(payload);
        });
        return off;
    }
    off(event, fn) {
        this.listeners.get(event)?.delete(fn);
    }
    emit(event, payload) {
        const set = this.listeners.get(event);
        if (!set)
            return;
        for (const fn of [...set]) {
            try {
                fn(payload);
            }
            catch (err) {
                this.listenerFailed(err);
            }
        }
    }
    /** A listener threw: re-thrown on a task of its own, so the host reports it. */
    listenerFailed(err) {
        queueMicrotask(() => {
            throw err;
        });
    }
}
