; Python import sites. Captures: @module (dotted_name), @module.string (a string literal
; holding a module name), @alias, @statement (the node whose other parts carry names).
; Which pattern matched is read from the capture names, so keep them stable.

; import a.b / import a, b
(import_statement
  name: (dotted_name) @module) @import

; import a.b as c
(import_statement
  name: (aliased_import
    name: (dotted_name) @module
    alias: (identifier) @alias)) @import

; from a.b import c, d as e / from a import (x, y) / from a import *
; A relative module (`from . import x`, `from ..a import b`) is a `relative_import` node and
; never matches here: it is local code.
(import_from_statement
  module_name: (dotted_name) @module) @from

; from __future__ import annotations
(future_import_statement
  "__future__" @module) @from

; __import__("x")
((call
   function: (identifier) @_function
   arguments: (argument_list . (string) @module.string))
 (#eq? @_function "__import__")) @dynamic

; importlib.import_module("x")
((call
   function: (attribute
     object: (identifier) @_object
     attribute: (identifier) @_function)
   arguments: (argument_list . (string) @module.string))
 (#eq? @_object "importlib")
 (#eq? @_function "import_module")) @dynamic
