"""Counts a log's lines by level (the word after the time): a script of the project, run by
examples/test_a_script_of_the_project.py. Exit status 1 if any line is an ERROR."""

import collections
import sys

levels = collections.Counter()
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        fields = line.split()
        if len(fields) > 1:
            levels[fields[1]] += 1
for level, count in sorted(levels.items()):
    print(level, count)
sys.exit(1 if levels["ERROR"] else 0)
