; TypeScript-only import sites, added to javascript-imports.scm for TypeScript and TSX.

; import x = require('x')
(import_statement
  (import_require_clause
    source: (string) @module.string)) @import
