/** One server-sent event. */
export interface SseEvent {
  /** The `event:` field ("message" when absent). */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The `id:` field, if any. */
  id?: string;
}

/**
 * Incremental parser of a `text/event-stream` body: feed it decoded text
 * in chunks of any size, get the complete events back.
 */
export class SseParser {
  #buf = "";
  #pendingCr = "";

  /** Adds text; returns the events it completed. */
  push(text: string): SseEvent[] {
    // A "\r" at the end of a chunk may be half of "\r\n": keep it until
    // the next chunk says.
    let raw = this.#pendingCr + text;
    this.#pendingCr = "";
    if (raw.endsWith("\r")) {
      this.#pendingCr = "\r";
      raw = raw.slice(0, -1);
    }
    this.#buf += raw.replace(/\r\n?/g, "\n");
    const out: SseEvent[] = [];
    let end: number;
    while ((end = this.#buf.indexOf("\n\n")) >= 0) {
      const block = this.#buf.slice(0, end);
      this.#buf = this.#buf.slice(end + 2);
      let event = "message";
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
      if (data.length === 0) continue;
      out.push({
        event,
        data: data.join("\n"),
        ...(id !== undefined ? { id } : {}),
      });
    }
    return out;
  }
}
