"""The one-line error helpers of the command lines."""
from stdsr.utils.cli import first_few


def test_first_few_names_a_few_items_and_counts_the_rest():
    assert first_few(['a', 'b', 'c', 'd', 'e']) == 'a, b, c and 2 more'
    assert first_few(['a', 'b', 'c']) == 'a, b, c'
    assert first_few(range(12), shown=1) == '0 and 11 more'
    assert first_few([]) == ''
