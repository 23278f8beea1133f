"""The sandbox boundary: every place where the host touches what a task's sandbox can write.

After a task's sandbox starts, its checkout (files, links, special files, its `.git`) and its
output are untrusted input. The modules of this package are the only host-side code that reads or
writes the checkout, names the uid a sandbox runs as, or turns untrusted text into something a
terminal prints; ARCHITECTURE.md ("The sandbox boundary") lists every crossing and how it is made
safe. Nothing here imports the rest of codex_tui.
"""
