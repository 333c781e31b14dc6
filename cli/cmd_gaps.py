"""`tvcat gaps`: list missing bars of one series."""

import click

from ..catalog.series import Series, normalize_timeframe, validate_symbol
from ..engine.gaps import find_gaps
from ..engine.importers.timeparse import format_utc
from ..errors import NotFound
from ..i18n import _
from .output import print_json, print_table


@click.command("gaps", help=_(
    "List missing bars of one series in the cache.\n\n"
    "A gap is a step between two stored bars longer than the bar spacing. When the source "
    "gave the trading session, time zone and holidays (TradingView does), only missing bars "
    "inside the session on trading days count, so nights, weekends and holidays are not gaps.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat gaps CME_MINI:ES1! 60\n"
    "  tvcat gaps BINANCE:BTCUSDT 1 --json"
))
@click.argument("symbol")
@click.argument("timeframe")
@click.option("--json", "as_json", is_flag=True, help=_("Print the gaps as JSON."))
@click.pass_obj
def gaps_command(app, symbol, timeframe, as_json):
    series = Series(validate_symbol(symbol), normalize_timeframe(timeframe))
    cache = app.bar_cache(create=False)
    if len(cache.last_bars(series, 1)) == 0:
        raise NotFound(detail=_("the cache {cache} has no bars of {symbol} {timeframe}").format(
            cache=app.cache, symbol=series.symbol, timeframe=series.timeframe))
    info = cache.series_info(series)
    gaps = list(find_gaps(cache, series))

    if as_json:
        print_json({"symbol": series.symbol, "timeframe": series.timeframe, "session": info,
                    "gaps": [{"after": gap.after, "before": gap.before, "missing": gap.missing,
                              "after_utc": format_utc(gap.after), "before_utc": format_utc(gap.before)}
                             for gap in gaps]})
        return
    basis = (_("session {session} in {zone}").format(session=info["session"], zone=info["timezone"])
             if info and info["session"] else _("bar spacing only: the source gave no trading session"))
    click.echo(_("{symbol} {timeframe}: {count} gap(s), {missing} missing bar(s); checked against {basis}").format(
        symbol=series.symbol, timeframe=series.timeframe, count=len(gaps),
        missing=sum(gap.missing for gap in gaps), basis=basis))
    if gaps:
        print_table(None, [_("last bar before (UTC)"), _("next bar (UTC)"), _("missing bars")],
                    [[format_utc(gap.after), format_utc(gap.before), gap.missing] for gap in gaps])


COMMANDS = [gaps_command]
