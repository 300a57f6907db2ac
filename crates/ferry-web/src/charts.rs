//! Server-side SVG charts: bars (stacked) and lines over hours or days,
//! drawn as plain shapes the template writes out. Each chart has a title
//! and a description for assistive technology, axis labels, every mark's
//! value on hover (an SVG `<title>`), a legend in words, and the same
//! numbers as a table behind a disclosure, so no value is only a colour.

use ferry_app::alerts::Point;
use ferry_core::metrics::Rollup;

/// The drawing's size in user units (it scales to its box).
const W: f64 = 480.0;
const H: f64 = 210.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;

/// A chart ready for `chart.html`.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Unique within the page (ids for aria-labelledby).
    pub id: String,
    /// Heading and SVG title.
    pub title: String,
    /// One sentence of what it shows, with the totals.
    pub desc: String,
    /// The vertical axis' label.
    pub y_label: String,
    /// Horizontal ticks: x position and text.
    pub x_ticks: Vec<(f64, String)>,
    /// Vertical ticks: y position and text.
    pub y_ticks: Vec<(f64, String)>,
    /// Bars: x, y, width, height, css class, hover text.
    pub bars: Vec<(f64, f64, f64, f64, &'static str, String)>,
    /// Lines: the `points` attribute and css class.
    pub lines: Vec<(String, &'static str)>,
    /// Dots on lines (for hover): x, y, css class, hover text.
    pub dots: Vec<(f64, f64, &'static str, String)>,
    /// Legend: css class and words.
    pub legend: Vec<(&'static str, &'static str)>,
    /// The table behind the disclosure: header and rows.
    pub table_head: Vec<&'static str>,
    /// Rows of the table.
    pub table: Vec<Vec<String>>,
    /// Whether anything at all happened (otherwise the chart says so).
    pub empty: bool,
    /// The axis box: left, top, right, bottom.
    pub frame: (f64, f64, f64, f64),
    /// The viewBox.
    pub view_box: String,
}

/// A series of a stacked bar chart: its name, css class and the value it
/// takes from a point.
pub struct Stack {
    /// Legend words.
    pub name: &'static str,
    /// Css class of its fill.
    pub class: &'static str,
    /// Its value at a point.
    pub value: fn(&Rollup) -> u64,
}

/// Whether points are hours or days (tick and hover text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Hour by hour.
    Hours,
    /// Day by day.
    Days,
}

fn when(p: &Point, period: Period) -> String {
    match period {
        Period::Hours => p.at.format("%H:00").to_string(),
        Period::Days => p.at.format("%d %b").to_string(),
    }
}

fn when_long(p: &Point, period: Period) -> String {
    match period {
        Period::Hours => format!(
            "{}–{} UTC",
            p.at.format("%d %b %H:00"),
            (p.at + chrono::Duration::hours(1)).format("%H:00")
        ),
        Period::Days => format!(
            "24 h to {} UTC",
            (p.at + chrono::Duration::hours(24)).format("%d %b %H:00")
        ),
    }
}

/// A "nice" top for an axis holding `max`.
fn nice_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= max {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_num(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// One decimal is enough for a drawing this size.
fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn frame() -> (f64, f64, f64, f64) {
    (LEFT, TOP, W - RIGHT, H - BOTTOM)
}

fn x_ticks(points: &[Point], period: Period, slot: f64) -> Vec<(f64, String)> {
    let every = match period {
        Period::Hours => 4,
        Period::Days => 1,
    };
    points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, p)| (r1(LEFT + slot * (i as f64 + 0.5)), when(p, period)))
        .collect()
}

fn y_ticks(top: f64, fmt: impl Fn(f64) -> String) -> Vec<(f64, String)> {
    let plot = H - BOTTOM - TOP;
    (0..=4)
        .map(|i| {
            let v = top * f64::from(i) / 4.0;
            (r1(H - BOTTOM - plot * f64::from(i) / 4.0), fmt(v))
        })
        .collect()
}

/// Stacked bars, one per point.
pub fn stacked(
    id: &str,
    title: &str,
    y_label: &str,
    points: &[Point],
    period: Period,
    stacks: &[Stack],
) -> Chart {
    let slot = (W - LEFT - RIGHT) / points.len().max(1) as f64;
    let plot = H - BOTTOM - TOP;
    #[allow(clippy::cast_precision_loss)]
    let max = points
        .iter()
        .map(|p| stacks.iter().map(|s| (s.value)(&p.rollup)).sum::<u64>() as f64)
        .fold(0.0, f64::max);
    let top = nice_top(max);
    let mut bars = Vec::new();
    let mut table = Vec::new();
    let mut totals = vec![0u64; stacks.len()];
    for (i, p) in points.iter().enumerate() {
        let mut base = H - BOTTOM;
        let mut row = vec![when_long(p, period)];
        for (k, s) in stacks.iter().enumerate() {
            let v = (s.value)(&p.rollup);
            totals[k] += v;
            row.push(v.to_string());
            if v == 0 {
                continue;
            }
            #[allow(clippy::cast_precision_loss)]
            let h = plot * v as f64 / top;
            base -= h;
            bars.push((
                r1(LEFT + slot * i as f64 + slot * 0.15),
                r1(base),
                r1(slot * 0.7),
                r1(h),
                s.class,
                format!("{}: {} {}", when_long(p, period), v, s.name),
            ));
        }
        table.push(row);
    }
    let desc = format!(
        "{} by {}: {}.",
        title,
        if period == Period::Hours {
            "hour"
        } else {
            "day"
        },
        stacks
            .iter()
            .zip(&totals)
            .map(|(s, t)| format!("{t} {}", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut head = vec![if period == Period::Hours {
        "Hour"
    } else {
        "Day"
    }];
    head.extend(stacks.iter().map(|s| s.name));
    Chart {
        id: id.to_owned(),
        title: title.to_owned(),
        desc,
        y_label: y_label.to_owned(),
        x_ticks: x_ticks(points, period, slot),
        y_ticks: y_ticks(top, fmt_num),
        bars,
        lines: Vec::new(),
        dots: Vec::new(),
        legend: stacks.iter().map(|s| (s.class, s.name)).collect(),
        table_head: head,
        table,
        empty: totals.iter().all(|t| *t == 0),
        frame: frame(),
        view_box: format!("0 0 {W} {H}"),
    }
}

/// A line series: its name, css class and its value at a point (none
/// where there is nothing to show).
pub struct Line {
    /// Legend words.
    pub name: &'static str,
    /// Css class of its stroke.
    pub class: &'static str,
    /// Its value at a point.
    pub value: fn(&Rollup) -> Option<f64>,
}

fn ms(v: f64) -> String {
    if v >= 60_000.0 {
        format!("{:.1} min", v / 60_000.0)
    } else if v >= 1000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

/// Lines of latencies (milliseconds), one point per period that had runs.
pub fn latency(id: &str, title: &str, points: &[Point], period: Period, lines: &[Line]) -> Chart {
    let slot = (W - LEFT - RIGHT) / points.len().max(1) as f64;
    let plot = H - BOTTOM - TOP;
    let max = points
        .iter()
        .flat_map(|p| lines.iter().filter_map(|l| (l.value)(&p.rollup)))
        .fold(0.0, f64::max);
    let top = nice_top(max);
    let mut paths = Vec::new();
    let mut dots = Vec::new();
    let mut table: Vec<Vec<String>> = points.iter().map(|p| vec![when_long(p, period)]).collect();
    for l in lines {
        let mut pts = Vec::new();
        for (i, p) in points.iter().enumerate() {
            let v = (l.value)(&p.rollup);
            table[i].push(v.map_or_else(|| "—".to_owned(), ms));
            if let Some(v) = v {
                let x = r1(LEFT + slot * (i as f64 + 0.5));
                let y = r1(H - BOTTOM - plot * v / top);
                pts.push(format!("{x:.1},{y:.1}"));
                dots.push((
                    x,
                    y,
                    l.class,
                    format!("{}: {} {}", when_long(p, period), l.name, ms(v)),
                ));
            }
        }
        if pts.len() > 1 {
            paths.push((pts.join(" "), l.class));
        }
    }
    let mut head = vec![if period == Period::Hours {
        "Hour"
    } else {
        "Day"
    }];
    head.extend(lines.iter().map(|l| l.name));
    let empty = dots.is_empty();
    Chart {
        id: id.to_owned(),
        title: title.to_owned(),
        desc: format!(
            "{title}: {} by {}, from the runs that ended in each.",
            lines
                .iter()
                .map(|l| l.name)
                .collect::<Vec<_>>()
                .join(" and "),
            if period == Period::Hours {
                "hour"
            } else {
                "day"
            }
        ),
        y_label: "Latency".to_owned(),
        x_ticks: x_ticks(points, period, slot),
        y_ticks: y_ticks(top, ms),
        bars: Vec::new(),
        lines: paths,
        dots,
        legend: lines.iter().map(|l| (l.class, l.name)).collect(),
        table_head: head,
        table,
        empty,
        frame: frame(),
        view_box: format!("0 0 {W} {H}"),
    }
}

/// The monitoring charts of a dashboard (a tenant's or a workflow's).
pub fn monitoring(prefix: &str, hours: &[Point], days: &[Point]) -> Vec<Chart> {
    let runs = [
        Stack {
            name: "succeeded",
            class: "fill-ok",
            value: |r| r.succeeded,
        },
        Stack {
            name: "failed or dead-lettered",
            class: "fill-bad",
            value: Rollup::failures,
        },
    ];
    let writes = [
        Stack {
            name: "landed",
            class: "fill-ok",
            value: |r| r.writes - r.writes_failed.min(r.writes),
        },
        Stack {
            name: "failed",
            class: "fill-bad",
            value: |r| r.writes_failed,
        },
    ];
    let volume = [Stack {
        name: "events",
        class: "fill-info",
        value: |r| r.events,
    }];
    let latencies = [
        Line {
            name: "p50",
            class: "stroke-info",
            value: |r| r.quantile_ms(0.5),
        },
        Line {
            name: "p95",
            class: "stroke-warn",
            value: |r| r.quantile_ms(0.95),
        },
    ];
    vec![
        stacked(
            &format!("{prefix}-runs24"),
            "Runs and failures, last 24 hours",
            "Runs",
            hours,
            Period::Hours,
            &runs,
        ),
        stacked(
            &format!("{prefix}-runs7"),
            "Runs and failures, last 7 days",
            "Runs",
            days,
            Period::Days,
            &runs,
        ),
        latency(
            &format!("{prefix}-latency"),
            "Latency, last 24 hours",
            hours,
            Period::Hours,
            &latencies,
        ),
        stacked(
            &format!("{prefix}-volume"),
            "Events received, last 24 hours",
            "Events",
            hours,
            Period::Hours,
            &volume,
        ),
        stacked(
            &format!("{prefix}-writes"),
            "Destination writes, last 24 hours",
            "Writes",
            hours,
            Period::Hours,
            &writes,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn points(n: usize) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                at: Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap()
                    + chrono::Duration::hours(i as i64),
                rollup: Rollup {
                    succeeded: i as u64,
                    failed: u64::from(i == 3),
                    ..Rollup::default()
                },
            })
            .collect()
    }

    #[test]
    fn bars_scale_to_a_nice_top_and_say_their_values() {
        let c = monitoring("t", &points(24), &points(7)).remove(0);
        assert!(!c.empty);
        // 23 is the largest stack: the axis tops at 25.
        assert_eq!(c.y_ticks.last().map(|t| t.1.as_str()), Some("25"));
        assert!(
            c.bars
                .iter()
                .any(|b| b.5.ends_with("1 failed or dead-lettered"))
        );
        assert!(c.desc.contains("276 succeeded") && c.desc.contains("1 failed"));
        assert_eq!(c.table.len(), 24);
        // Every bar stays inside the frame.
        for (x, y, w, h, _, _) in &c.bars {
            assert!(
                *x >= LEFT
                    && x + w <= W - RIGHT + 0.1
                    && *y >= TOP - 0.1
                    && y + h <= H - BOTTOM + 0.1
            );
        }
    }

    #[test]
    fn an_empty_period_draws_no_marks_and_says_so() {
        let none: Vec<Point> = points(24)
            .into_iter()
            .map(|p| Point {
                rollup: Rollup::default(),
                ..p
            })
            .collect();
        for c in monitoring("e", &none, &none[..7]) {
            assert!(c.empty, "{}", c.title);
            assert!(c.bars.is_empty() && c.dots.is_empty());
        }
    }
}
