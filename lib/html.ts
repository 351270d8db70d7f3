/** Text as HTML character data or a quoted attribute value: the five characters that could end either. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
