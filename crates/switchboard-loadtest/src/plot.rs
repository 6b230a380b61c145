//! A latency plot anyone can open: hand-written SVG with two panels, the latency histogram
//! (log-spaced bins, log x axis) and p50/p99 over time, one colour per target. `.html` wraps
//! the SVG with the summary tables.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result};

use crate::report::{Report, TargetReport, format_us};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 760.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 40.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// A panel's area on the canvas.
#[derive(Clone, Copy)]
struct Area {
    top: f64,
    bottom: f64,
}

impl Area {
    fn x(self, fraction: f64) -> f64 {
        LEFT + fraction.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(self, fraction: f64) -> f64 {
        self.bottom - fraction.clamp(0.0, 1.0) * (self.bottom - self.top)
    }
}

/// A log10 axis over microseconds.
#[derive(Clone, Copy)]
struct LogAxis {
    low: f64,
    high: f64,
}

impl LogAxis {
    fn covering(values: impl Iterator<Item = f64>) -> Self {
        let (mut low, mut high) = (f64::MAX, f64::MIN);
        for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
            low = low.min(v.log10());
            high = high.max(v.log10());
        }
        if low > high {
            return Self {
                low: 1.0,
                high: 4.0,
            };
        }
        let low = low.floor();
        let high = high.ceil().max(low + 1.0);
        Self { low, high }
    }

    fn fraction(self, us: f64) -> f64 {
        (us.max(1e-3).log10() - self.low) / (self.high - self.low)
    }

    /// Tick values: every 1, 2 and 5 for narrow ranges, every decade otherwise.
    fn ticks(self) -> Vec<f64> {
        let mut ticks = Vec::new();
        let mut decade = self.low;
        while decade <= self.high + 1e-9 {
            let base = 10f64.powf(decade);
            ticks.push(base);
            if self.high - self.low <= 3.0 && decade < self.high {
                ticks.push(base * 2.0);
                ticks.push(base * 5.0);
            }
            decade += 1.0;
        }
        ticks
    }
}

/// A round step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`.
fn nice_step(span: f64, count: f64) -> f64 {
    let raw = (span / count).max(1e-12);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// A tick label: `100 µs`, `2 ms`, `1.5 s`.
fn tick_label(us: f64) -> String {
    let (value, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    format!("{} {unit}", trim_number(value))
}

/// `2` rather than `2.0`, `0.5` rather than `0.50`.
fn trim_number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The plot as an SVG document.
pub fn svg(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "switchboard-loadtest {} · {} · {}",
        report.settings.scenario.name(),
        report.settings.tool,
        report.git.as_deref().unwrap_or("")
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(&title)
    );
    let axis = LogAxis::covering(report.targets.iter().flat_map(|t| {
        t.histogram
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| b.le_us)
            .chain(t.series.iter().flat_map(|b| [b.p50_us, b.p99_us]))
    }));
    histogram_panel(
        &mut out,
        report,
        axis,
        Area {
            top: 80.0,
            bottom: 350.0,
        },
    );
    time_panel(
        &mut out,
        report,
        axis,
        Area {
            top: 440.0,
            bottom: 710.0,
        },
    );
    out.push_str("</svg>\n");
    out
}

fn histogram_panel(out: &mut String, report: &Report, axis: LogAxis, area: Area) {
    let share = |t: &TargetReport, count: u64| {
        let total: u64 = t.histogram.iter().map(|b| b.count).sum();
        count as f64 * 100.0 / total.max(1) as f64
    };
    let highest = report
        .targets
        .iter()
        .flat_map(|t| t.histogram.iter().map(move |b| share(t, b.count)))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let share_step = nice_step(highest, 5.0);
    let top_share = (highest / share_step).ceil() * share_step;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">Latency histogram (share of answered calls per bin, bins 1.25× wide)</text>"#,
        area.top - 30.0
    );
    frame(out, area);
    x_log_ticks(out, area, axis);
    let mut value = 0.0;
    while value <= top_share + 1e-9 {
        y_tick(
            out,
            area,
            value / top_share,
            &format!("{}%", trim_number(value)),
        );
        value += share_step;
    }
    for (i, t) in report.targets.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut path = String::new();
        let mut previous: Option<f64> = None;
        for bin in &t.histogram {
            let right = area.x(axis.fraction(bin.le_us));
            let left = previous.unwrap_or_else(|| area.x(axis.fraction(bin.le_us / 1.25)));
            let y = area.y(share(t, bin.count) / top_share);
            if path.is_empty() {
                let _ = write!(path, "M{left:.1},{:.1} ", area.bottom);
            }
            let _ = write!(path, "V{y:.1} H{right:.1} ");
            previous = Some(right);
        }
        if !path.is_empty() {
            let _ = write!(path, "V{:.1}", area.bottom);
            let _ = writeln!(
                out,
                r#"<path d="{path}" fill="{colour}" fill-opacity="0.15" stroke="{colour}" stroke-width="1.5"/>"#
            );
        }
        for (q, value, dash) in [
            ("p50", t.latency.p50_us, "4,3"),
            ("p99", t.latency.p99_us, "1,2"),
        ] {
            if value > 0.0 {
                let x = area.x(axis.fraction(value));
                let _ = writeln!(
                    out,
                    r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="{colour}" stroke-dasharray="{dash}"><title>{} {q} {}</title></line>"#,
                    area.top,
                    area.bottom,
                    escape(&t.name),
                    format_us(value)
                );
            }
        }
    }
    legend(
        out,
        area,
        report
            .targets
            .iter()
            .map(|t| {
                format!(
                    "{}: p50 {} (dashed) · p99 {} (dotted)",
                    t.name,
                    format_us(t.latency.p50_us),
                    format_us(t.latency.p99_us)
                )
            })
            .collect(),
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">latency</text>"#,
        area.x(0.5),
        area.bottom + 34.0
    );
}

fn time_panel(out: &mut String, report: &Report, axis: LogAxis, area: Area) {
    let end = report
        .targets
        .iter()
        .flat_map(|t| t.series.iter().map(|b| b.t_s))
        .fold(0.0f64, f64::max);
    let width = report
        .targets
        .iter()
        .flat_map(|t| t.series.windows(2).map(|w| w[1].t_s - w[0].t_s))
        .filter(|d| *d > 0.0)
        .fold(f64::MAX, f64::min);
    let width = if width == f64::MAX { 0.1 } else { width };
    let span = (end + width).max(1e-3);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">Latency over time (p99 solid, p50 dashed; gaps: the other target's rounds)</text>"#,
        area.top - 30.0
    );
    frame(out, area);
    let step = nice_step(span, 6.0);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let x = area.x(t / span);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{} s</text>"##,
            area.top,
            area.bottom,
            area.bottom + 16.0,
            trim_number(t)
        );
        t += step;
    }
    for tick in axis.ticks() {
        y_tick(out, area, axis.fraction(tick), &tick_label(tick));
    }
    for (i, t) in report.targets.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        for (pick, dash, stroke) in [(0, "5,3", 1.0), (1, "", 1.8)] {
            let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
            let mut last_t = f64::MIN;
            for b in &t.series {
                let value = if pick == 0 { b.p50_us } else { b.p99_us };
                if value <= 0.0 {
                    continue;
                }
                let point = (
                    area.x((b.t_s + width / 2.0) / span),
                    area.y(axis.fraction(value)),
                );
                if b.t_s - last_t > width * 1.5 || segments.is_empty() {
                    segments.push(Vec::new());
                }
                if let Some(segment) = segments.last_mut() {
                    segment.push(point);
                }
                last_t = b.t_s;
            }
            for segment in segments {
                let points: Vec<String> = segment
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                if points.len() == 1 {
                    let (x, y) = segment[0];
                    let _ = writeln!(
                        out,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="1.5" fill="{colour}"/>"#
                    );
                } else {
                    let _ = writeln!(
                        out,
                        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="{stroke}" stroke-dasharray="{dash}"/>"#,
                        points.join(" ")
                    );
                }
            }
        }
        // Failed calls: a mark on the bottom edge of each interval that had any.
        for b in t.series.iter().filter(|b| b.errors > 0) {
            let x = area.x((b.t_s + width / 2.0) / span);
            let _ = writeln!(
                out,
                r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="{colour}" stroke-width="2"><title>{} errors</title></line>"#,
                area.bottom - 6.0,
                area.bottom,
                b.errors
            );
        }
    }
    legend(
        out,
        area,
        report
            .targets
            .iter()
            .map(|t| format!("{}: {:.0} calls/s", t.name, t.throughput))
            .collect(),
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">time since the end of warm-up (ticks under the axis: intervals with errors)</text>"#,
        area.x(0.5),
        area.bottom + 34.0
    );
}

fn frame(out: &mut String, area: Area) {
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
        area.top,
        WIDTH - LEFT - RIGHT,
        area.bottom - area.top
    );
}

fn x_log_ticks(out: &mut String, area: Area, axis: LogAxis) {
    for tick in axis.ticks() {
        let x = area.x(axis.fraction(tick));
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            area.top,
            area.bottom,
            area.bottom + 16.0,
            escape(&tick_label(tick))
        );
    }
}

fn y_tick(out: &mut String, area: Area, fraction: f64, label: &str) {
    let y = area.y(fraction);
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
        WIDTH - RIGHT,
        LEFT - 6.0,
        y + 4.0,
        escape(label)
    );
}

/// One entry per target, side by side just above the panel's frame.
fn legend(out: &mut String, area: Area, lines: Vec<String>) {
    let width = (WIDTH - LEFT - RIGHT) / lines.len().max(1) as f64;
    for (i, line) in lines.iter().enumerate() {
        let x = LEFT + width * i as f64;
        let y = area.top - 8.0;
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{y}">{}</text>"#,
            y - 10.0,
            x + 18.0,
            escape(line)
        );
    }
}

/// The plot inside an HTML page, with the summary tables.
pub fn html(report: &Report) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>switchboard-loadtest {}</title>\
         </head>\n<body style=\"font-family: sans-serif\">\n{}\n<pre>{}</pre>\n</body></html>\n",
        escape(report.settings.scenario.name()),
        svg(report),
        escape(&report.render())
    )
}

/// Writes the plot: HTML for `.html`/`.htm`, SVG otherwise.
///
/// # Errors
/// The file cannot be written.
pub fn write(report: &Report, path: &Path) -> Result<()> {
    let is_html = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let text = if is_html { html(report) } else { svg(report) };
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_covers_and_ticks() {
        let axis = LogAxis::covering([150.0, 12_000.0].into_iter());
        assert_eq!((axis.low, axis.high), (2.0, 5.0));
        assert!((axis.fraction(1000.0) - 1.0 / 3.0).abs() < 1e-9);
        let ticks = axis.ticks();
        assert_eq!(ticks.first().copied(), Some(100.0));
        assert!(ticks.contains(&500.0));
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
