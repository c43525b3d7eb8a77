//! The drill's HTML report (`--html FILE`): one self-contained page, charts as inline SVG, no
//! script and nothing fetched. Completed tasks against the fault-free run, faults and
//! recoveries by strategy, the degradation level and the runs in flight, over time.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::chart::{Chart, PALETTE, Series};
use crate::timeline::Timeline;

/// What a page shows.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// The title.
    pub title: String,
    /// The closing line of the run (passed or not).
    pub last_line: String,
    /// The options, one `name = value` line each.
    pub options: Vec<(String, String)>,
    /// The report's text table.
    pub table: String,
    /// The run over time.
    pub timeline: &'a Timeline,
    /// The same workload without faults, if it ran.
    pub baseline: Option<&'a Timeline>,
    /// The time axis's label (`seconds`, or `simulated hours`).
    pub time_label: &'a str,
    /// Seconds per unit of the time axis (1, or 3600 for hours).
    pub time_unit: f64,
    /// Whether the run passed.
    pub passed: bool,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Per-second rates of a cumulative count, between consecutive samples.
fn rate(points: &[(f64, f64)], unit: f64) -> Vec<(f64, f64)> {
    points
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].0, (w[1].1 - w[0].1) / ((w[1].0 - w[0].0) * unit)))
        .collect()
}

impl Page<'_> {
    /// The page.
    pub fn render(&self) -> String {
        let t = |secs: f64| secs / self.time_unit;
        let points = &self.timeline.points;
        let completed = |tl: &Timeline| -> Vec<(f64, f64)> {
            tl.points
                .iter()
                .map(|p| (t(p.t), p.completed as f64))
                .collect()
        };
        let mut charts = Vec::new();

        let mut series = vec![Series {
            name: "with faults".into(),
            colour: PALETTE[0],
            points: completed(self.timeline),
            dashed: false,
        }];
        if let Some(b) = self.baseline {
            series.push(Series {
                name: "fault-free".into(),
                colour: "#777",
                points: completed(b),
                dashed: true,
            });
        }
        charts.push(Chart {
            title: "Completed tasks".into(),
            x_label: self.time_label.into(),
            y_label: "tasks".into(),
            series,
            steps: false,
            y_names: None,
        });

        let strategies: BTreeSet<&String> =
            points.iter().flat_map(|p| p.recoveries.keys()).collect();
        let mut series = vec![Series {
            name: "faults injected".into(),
            colour: "#000",
            points: rate(
                &points
                    .iter()
                    .map(|p| (t(p.t), p.faults as f64))
                    .collect::<Vec<_>>(),
                self.time_unit,
            ),
            dashed: true,
        }];
        for (i, s) in strategies.iter().enumerate() {
            let cumulative: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (t(p.t), p.recoveries.get(*s).copied().unwrap_or(0) as f64))
                .collect();
            series.push(Series {
                name: (*s).clone(),
                colour: PALETTE[(i + 1) % PALETTE.len()],
                points: rate(&cumulative, self.time_unit),
                dashed: false,
            });
        }
        charts.push(Chart {
            title: "Faults and recovery attempts per second, by strategy".into(),
            x_label: self.time_label.into(),
            y_label: "per second".into(),
            series,
            steps: false,
            y_names: None,
        });

        charts.push(Chart {
            title: "Degradation level".into(),
            x_label: self.time_label.into(),
            y_label: "level".into(),
            series: vec![Series {
                name: "level".into(),
                colour: PALETTE[1],
                points: points
                    .iter()
                    .map(|p| (t(p.t), f64::from(p.level)))
                    .collect(),
                dashed: false,
            }],
            steps: true,
            y_names: Some(vec!["Normal", "Reduced", "Minimal", "Critical"]),
        });

        charts.push(Chart {
            title: "Runs in flight".into(),
            x_label: self.time_label.into(),
            y_label: "runs".into(),
            series: vec![Series {
                name: "in flight".into(),
                colour: PALETTE[2],
                points: points
                    .iter()
                    .map(|p| (t(p.t), p.in_flight as f64))
                    .collect(),
                dashed: false,
            }],
            steps: true,
            y_names: None,
        });

        let mut html = String::new();
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font-family:sans-serif;margin:24px;max-width:960px;color:#222}}\
             h1{{font-size:22px}}.verdict{{padding:8px 12px;border-radius:4px;display:inline-block;font-weight:bold}}\
             .pass{{background:#e3f4e1;color:#1b5e20}}.fail{{background:#fde2e1;color:#b71c1c}}\
             table{{border-collapse:collapse;margin:12px 0}}td{{padding:2px 12px 2px 0;font-family:monospace}}\
             pre{{background:#f6f6f6;padding:12px;overflow-x:auto}}svg{{margin:12px 0;border:1px solid #eee}}</style>\
             </head><body>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        let _ = writeln!(
            html,
            "<p class=\"verdict {}\">{}</p>",
            if self.passed { "pass" } else { "fail" },
            escape(&self.last_line)
        );
        html.push_str("<table>\n");
        for (k, v) in &self.options {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(k),
                escape(v)
            );
        }
        html.push_str("</table>\n");
        for chart in &charts {
            html.push_str(&chart.svg());
            html.push('\n');
        }
        let _ = writeln!(html, "<h2>Report</h2>\n<pre>{}</pre>", escape(&self.table));
        html.push_str("</body></html>\n");
        html
    }
}
