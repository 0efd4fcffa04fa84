"""Text to checked IR: syntax (lark) → AST with spans → checker → frozen IR, and back to
canonical text. The language knows no kinds: names are resolved against a
:class:`~stratlang.language.vocabulary.Vocabulary` given to the checker and the printer."""
