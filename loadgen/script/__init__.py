"""The script API (users, tasks, pacing, shapes) and the script loader."""
