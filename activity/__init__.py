"""The activity trail: who did what in the console, and when (Administration > Activity)."""
