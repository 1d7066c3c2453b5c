"""The grader's engine: collect the evidence, judge it, render the words. checks.grade() is the
one function every front end calls."""
