"""The caller corpus (corpus.py) and the small harness (harness.py) that
test_callers.py, test_options.py and test_real_programs.py share."""
