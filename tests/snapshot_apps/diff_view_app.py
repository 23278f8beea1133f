"""A DiffView showing a fixed patch, for SVG snapshot tests."""

from __future__ import annotations

from textual.app import App, ComposeResult

from codex_tui.tui.widgets.diff_view import DiffView

PATCH = """\
diff --git a/calc.py b/calc.py
index 3b18e51..9d2c1f0 100644
--- a/calc.py
+++ b/calc.py
@@ -1,7 +1,10 @@
 def add(a, b):
-    return a + b
+    \"\"\"Add two numbers.\"\"\"
+    return a + b  # checked
\x20
\x20
 def sub(a, b):
     return a - b
+
+
+MAX = 10
diff --git a/docs/notes.md b/docs/notes.md
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/docs/notes.md
@@ -0,0 +1,3 @@
+# Notes
+
+Run `make test` before pushing.
diff --git a/logo.png b/logo.png
index 88768ef..3e3315e 100644
Binary files a/logo.png and b/logo.png differ
diff --git a/old.txt b/old.txt
deleted file mode 100644
index 45b983b..0000000
--- a/old.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-first
-second
\\ No newline at end of file
"""


class DiffViewApp(App[None]):
    """One DiffView with PATCH loaded."""

    def compose(self) -> ComposeResult:
        yield DiffView()

    def on_mount(self) -> None:
        self.query_one(DiffView).set_patch(PATCH)


if __name__ == "__main__":
    DiffViewApp().run()
