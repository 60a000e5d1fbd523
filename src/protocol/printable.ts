/**
 * Text from the wire (a node's log line, an error message, a node id, a reply's msg) made safe to print on a
 * terminal: control characters (ESC sequences that retitle the window, clear the screen or move the cursor;
 * carriage returns and newlines that forge whole lines; DEL, C1 controls) and bidirectional overrides (which
 * reorder what is shown) become visible escapes; credentials in URLs become `***`. Printable text is unchanged.
 */

// C0 controls except tab, DEL, C1 controls, bidi embeddings/overrides/isolates, line/paragraph separators.
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_KEEP_NEWLINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

function escape(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line of wire text, safe to print. `multiline` keeps `\n` (for text we lay out ourselves). */
export function printable(text: string, options: { multiline?: boolean } = {}): string {
  return String(text)
    .replace(options.multiline ? UNSAFE_KEEP_NEWLINES : UNSAFE, escape)
    .replace(URL_CREDENTIALS, '$1***@');
}
