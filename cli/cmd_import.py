"""`tvcat import`: read bar files into the cache."""

from pathlib import Path

import click

from ..catalog.series import normalize_timeframe, validate_symbol
from ..engine.importing import import_files
from ..i18n import _
from .output import print_json, print_table


@click.command("import", help=_(
    "Import bar files into the cache.\n\n"
    "Reads TradingView chart exports (symbol and timeframe from names such as "
    "'BINANCE_BTCUSDT, 15.csv') and MetaTrader exports. Every file is checked "
    "before any is written: one invalid row stops the import and leaves the cache "
    "as it was. Bars equal to the stored ones are left untouched.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Import TradingView exports\n"
    "  tvcat import 'BINANCE_BTCUSDT, 60.csv' 'CME_MINI_ES1!, 1D.csv'\n"
    "  # Import a file whose times carry no offset\n"
    "  tvcat import EURUSD60.csv --symbol FX:EURUSD --timeframe 60 --tz UTC"
))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--symbol", help=_("Symbol for every file, e.g. BINANCE:BTCUSDT. Default: from the file name."))
@click.option("--timeframe", help=_("Timeframe for every file, e.g. 15 or 1D. Default: from the file name."))
@click.option("--tz", "tz", metavar="ZONE",
              help=_("IANA time zone, e.g. America/New_York, for times written without an offset."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def import_command(app, files, symbol, timeframe, tz, as_json):
    if symbol is not None:
        validate_symbol(symbol)
    if timeframe is not None:
        timeframe = normalize_timeframe(timeframe)
    app.reject_dry_run("tvcat import")
    repository = app.repository()
    cache = app.bar_cache()
    reports = import_files(repository, cache, list(files), symbol=symbol, timeframe=timeframe, tz=tz)

    if as_json:
        print_json([report.__dict__ for report in reports])
        return
    print_table(
        _("Imported into {cache}").format(cache=app.cache),
        [_("file"), _("symbol"), _("timeframe"), _("rows"), _("new"), _("changed"), _("unchanged")],
        [[Path(r.path).name, r.symbol, r.timeframe, r.rows_read, r.bars_inserted, r.bars_updated, r.bars_unchanged]
         for r in reports],
    )


COMMANDS = [import_command]
