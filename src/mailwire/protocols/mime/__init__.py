"""MIME core, sans-io: reading stored messages and composing new ones (RFC 2045-2049, 5322).

- `parse`: raw RFC 5322 bytes -> `ParsedMessage` (headers, addresses, leaf parts
  numbered as IMAP numbers them, the message's text); never raises on bad input;
- `headers`: header fields, RFC 2047 encoded words, address lists;
- `charsets`: bytes -> text with fallbacks for missing, unknown or lying charsets;
- `decode`: incremental content-transfer-encoding decoders (chunks in, bytes out);
- `filenames`: safe file names and RFC 6266 Content-Disposition for downloads;
- `build`: upload fields -> RFC 5322 bytes with CRLF line endings;
- `render`: header fields for the wire (injection checks, encoded words, folding, RFC 2231);
- `errors`: the errors this package raises (only `build` and `filenames` raise).

Standard library only (the `email` package where it fits); no I/O, no frameworks.
May import `mailwire.errors`; nothing above `protocols`.
"""
