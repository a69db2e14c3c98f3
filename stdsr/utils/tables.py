"""Markdown tables, the form every report of the project is written in."""


def markdown_table(header, rows, align=None):
    """Lines of a markdown table: ``header`` cells, then one line per row of cells (``str()``-ed, '|' escaped).

    ``align`` is one of 'l'/'r' per column (default: left), rendered as ``---`` / ``--:``.
    """
    align = align or 'l' * len(header)
    if len(align) != len(header):
        raise ValueError(f'{len(align)} alignments for {len(header)} columns')

    def line(cells):
        return '| ' + ' | '.join(str(c).replace('|', '/') for c in cells) + ' |'

    return [line(header), '|' + '|'.join('--:' if a == 'r' else '---' for a in align) + '|'] + [line(r) for r in rows]
