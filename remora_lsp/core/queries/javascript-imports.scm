; JavaScript / TypeScript / TSX import sites. Captures: @module.string (the specifier
; literal) and one of @import, @export, @require, @dynamic (the node that carries names).

; import x from 'x' / import {a} from 'x' / import * as n from 'x' / import 'x'
; import type {T} from 'x' (TypeScript)
(import_statement
  source: (string) @module.string) @import

; export * from 'x' / export {a} from 'x' / export * as n from 'x'
(export_statement
  source: (string) @module.string) @export

; require('x') anywhere, including `const x = require('x')`
((call_expression
   function: (identifier) @_function
   arguments: (arguments . [(string) (template_string)] @module.string))
 (#eq? @_function "require")) @require

; import('x') / await import("x") / import(`x`)
(call_expression
  function: (import)
  arguments: (arguments . [(string) (template_string)] @module.string)) @dynamic
