// A strict check of the HTML rst auth sends, stricter than what browsers accept: a doctype,
// every element closed in order (void elements never), attributes quoted and not repeated, `&`
// only in character references, `<html lang>`, a charset and a title, and no external resource
// (images, scripts, style sheets, frames, fonts: mail clients block them, and they would tell a
// third party when the mail is read). Links (`<a href>`) are not resources.
const VOID = new Set([
  'area',
  'base',
  'br',
  'col',
  'embed',
  'hr',
  'img',
  'input',
  'link',
  'meta',
  'source',
  'track',
  'wbr',
]);
const RESOURCE_TAGS = new Set([
  'img',
  'script',
  'link',
  'iframe',
  'frame',
  'object',
  'embed',
  'video',
  'audio',
  'source',
  'picture',
  'svg',
]);
const RESOURCE_ATTRIBUTES = new Set(['src', 'srcset', 'background', 'poster', 'data']);
const TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)([^<>]*)>/g;
const ATTRIBUTE = /\s+([a-zA-Z][a-zA-Z0-9:-]*)(?:="([^"<]*)")?/y;
const BAD_AMPERSAND = /&(?!(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#x[0-9a-fA-F]+);)/;

export function htmlProblems(html: string): string[] {
  const problems: string[] = [];
  if (!/^<!doctype html>\r?\n/i.test(html)) problems.push('does not start with <!doctype html>');
  const body = html.replace(/^<!doctype html>/i, '').replace(/<!--[\s\S]*?-->/g, '');
  const stack: string[] = [];
  const seen = new Map<string, Record<string, string>[]>();
  let last = 0;
  const text = (s: string) => {
    if (/[<>]/.test(s)) problems.push(`a stray < or > in text: ${JSON.stringify(s.trim().slice(0, 40))}`);
    if (BAD_AMPERSAND.test(s)) problems.push(`a bare & in text: ${JSON.stringify(s.trim().slice(0, 40))}`);
  };
  for (const m of body.matchAll(TAG)) {
    text(body.slice(last, m.index));
    last = m.index + m[0].length;
    const closing = m[1] === '/';
    const name = m[2]!.toLowerCase();
    const rest = m[3]!.replace(/\s*\/$/, '');
    if (closing) {
      if (rest.trim() !== '') problems.push(`</${name}> carries attributes`);
      if (VOID.has(name)) problems.push(`</${name}>: a void element has no end tag`);
      else if (stack.at(-1) !== name) problems.push(`</${name}> closes <${stack.at(-1) ?? 'nothing'}>`);
      else stack.pop();
      continue;
    }
    const attributes: Record<string, string> = {};
    ATTRIBUTE.lastIndex = 0;
    let at = 0;
    for (;;) {
      ATTRIBUTE.lastIndex = at;
      const a = ATTRIBUTE.exec(rest);
      if (!a) break;
      at = ATTRIBUTE.lastIndex;
      const key = a[1]!.toLowerCase();
      if (key in attributes) problems.push(`<${name}> repeats the attribute ${key}`);
      attributes[key] = a[2] ?? '';
      if (a[2] !== undefined && BAD_AMPERSAND.test(a[2])) problems.push(`<${name} ${key}> holds a bare &`);
    }
    if (rest.slice(at).trim() !== '')
      problems.push(`<${name}> has a malformed or unquoted attribute: ${rest.slice(at).trim()}`);
    if (RESOURCE_TAGS.has(name)) problems.push(`<${name}> loads an external resource`);
    for (const key of Object.keys(attributes))
      if (RESOURCE_ATTRIBUTES.has(key)) problems.push(`<${name} ${key}> loads an external resource`);
    if (/url\(|@import/i.test(attributes.style ?? '')) problems.push(`<${name} style> loads an external resource`);
    seen.set(name, [...(seen.get(name) ?? []), attributes]);
    if (!VOID.has(name)) stack.push(name);
  }
  text(body.slice(last));
  if (stack.length > 0) problems.push(`unclosed: ${stack.map((n) => `<${n}>`).join(' ')}`);
  const htmlElement = seen.get('html');
  if (htmlElement?.length !== 1) problems.push('not exactly one <html> element');
  else if (!/^[a-z]{2,3}(-[A-Za-z0-9]+)*$/.test(htmlElement[0]!.lang ?? '')) problems.push('<html> has no valid lang');
  if (!seen.get('meta')?.some((a) => a.charset?.toLowerCase() === 'utf-8')) problems.push('no <meta charset="utf-8">');
  if (!/<title>[^<\s][^<]*<\/title>/.test(body)) problems.push('no non-empty <title>');
  for (const required of ['head', 'body'])
    if (seen.get(required)?.length !== 1) problems.push(`not exactly one <${required}>`);
  if (/<style[\s>][\s\S]*?(url\(|@import)/i.test(body)) problems.push('a <style> loads an external resource');
  return problems;
}

/** Plain text a mail client shows as it is: no markup, no control characters, lines within 78
 * characters (RFC 5322 §2.1.1) except a line that is a link alone, one final newline. */
export function textProblems(text: string): string[] {
  const problems: string[] = [];
  if (/<\/?[a-zA-Z][^>]*>|&[a-z]+;|&#\d+;/.test(text)) problems.push('holds HTML markup or a character reference');
  // Any control character but the newline.
  if (/[^\P{Cc}\n]/u.test(text)) problems.push('holds a control character');
  if (!text.endsWith('\n') || text.endsWith('\n\n')) problems.push('does not end with exactly one newline');
  text.split('\n').forEach((line, i) => {
    if (line.length > 78 && !/^https?:\/\/\S+$/.test(line)) problems.push(`line ${i + 1} is ${line.length} characters`);
    if (/\s$/.test(line)) problems.push(`line ${i + 1} ends with a space`);
  });
  return problems;
}
