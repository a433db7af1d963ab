//! The chart itself: one line per series, latency on a log axis, the share
//! of requests on a linear one, and a legend naming each line with its p50
//! and p99.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{LatencyRange, format_latency};
use super::cdf::Cdf;
use super::series::LatencySeries;

/// Chart width and the plot's height in pixels: small enough to sit in a
/// README beside the text.
const SIZE: (u32, u32) = (760, 400);
/// Height of one legend row below the plot.
const LEGEND_ROW: u32 = 22;
/// Points per line: enough for a smooth curve, a few kB per series.
const POINTS: usize = 240;
/// Distinct colours, in legend order; they cycle past the last.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Why a chart was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// No series had a sample: there is nothing to draw.
    #[error("no latency samples to plot")]
    Empty,
    /// Drawing or writing the file failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// The file being written.
        path: String,
        /// What the backend reported.
        message: String,
    },
}

/// Draws the latency CDF of every series with samples into the SVG file
/// `path`, under `title`; series without samples are left out of the chart.
///
/// ```
/// use std::time::Duration;
/// use nexus_examples::plot::{LatencySeries, PlotError, write_latency_cdfs};
/// let path = std::env::temp_dir().join("nexus-plot-empty.svg");
/// let empty = LatencySeries::new("none", Vec::new());
/// assert!(matches!(write_latency_cdfs(&path, "t", &[empty]), Err(PlotError::Empty)));
/// ```
pub fn write_latency_cdfs(
    path: &Path,
    title: &str,
    series: &[LatencySeries],
) -> Result<(), PlotError> {
    let lines: Vec<(&str, Cdf)> = series
        .iter()
        .map(|s| (s.label.as_str(), Cdf::of(&s.samples, POINTS)))
        .filter(|(_, cdf)| !cdf.points().is_empty())
        .collect();
    let (min, max) = lines
        .iter()
        .filter_map(|(_, cdf)| cdf.span_us())
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
        .ok_or(PlotError::Empty)?;
    let range = LatencyRange::covering(min, max);
    draw(path, title, range, &lines).map_err(|error| PlotError::Draw {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

fn draw(
    path: &Path,
    title: &str,
    range: LatencyRange,
    lines: &[(&str, Cdf)],
) -> Result<(), Box<dyn std::error::Error>> {
    // The legend gets rows of its own under the plot: lines that span
    // decades leave no corner of the plot free to cover.
    let rows = u32::try_from(lines.len()).unwrap_or(u32::MAX);
    let height = SIZE.1 + LEGEND_ROW * rows + 12;
    let root = SVGBackend::new(path, (SIZE.0, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend_area) = root.split_vertically(SIZE.1);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        // Room for the last tick's label, centred on the axis' end.
        .margin_right(32)
        .x_label_area_size(48)
        .y_label_area_size(64)
        // The x axis is log10(µs), linear, with its ticks drawn here rather
        // than by plotters' log scale (which draws each decade's tick twice).
        .build_cartesian_2d(log(range.from_us)..log(range.to_us), 0.0..1.0_f64)?;
    chart
        .configure_mesh()
        .x_desc("latency (log scale)")
        .y_desc("share of requests at or below")
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|share| format!("{:.0}%", share * 100.0))
        .y_labels(11)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()?;
    let light = RGBColor(238, 238, 238);
    let bold = RGBColor(205, 205, 205);
    for us in range.minor_us() {
        chart.draw_series(std::iter::once(PathElement::new(
            [(log(us), 0.0), (log(us), 1.0)],
            light,
        )))?;
    }
    for us in range.labelled_us() {
        chart.draw_series(std::iter::once(PathElement::new(
            [(log(us), 0.0), (log(us), 1.0)],
            bold,
        )))?;
        let (x, y) = chart.backend_coord(&(log(us), 0.0));
        plot.draw(&Text::new(
            format_latency(us),
            (x, y + 8),
            ("sans-serif", 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    // Where the legend's p50 and p99 are read: each line crosses them there.
    for (share, name) in [(0.5, "p50"), (0.99, "p99")] {
        chart.draw_series(DashedLineSeries::new(
            [(log(range.from_us), share), (log(range.to_us), share)],
            6,
            4,
            RGBColor(120, 120, 120).stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            name,
            (log(range.to_us), share),
            ("sans-serif", 13)
                .into_font()
                .color(&RGBColor(90, 90, 90))
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
    }
    for (index, (label, cdf)) in lines.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let legend = format!(
            "{label}  (p50 {}, p99 {})",
            format_latency(cdf.p50_us().unwrap_or_default()),
            format_latency(cdf.p99_us().unwrap_or_default()),
        );
        // A log axis has no zero: the rare sample below its start is drawn
        // at the start.
        let points = cdf
            .points()
            .iter()
            .map(|&(us, share)| (log(us.max(range.from_us)), share));
        chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
        let y = i32::try_from(LEGEND_ROW * u32::try_from(index).unwrap_or(0) + LEGEND_ROW / 2)?;
        legend_area.draw(&PathElement::new(
            [(76, y), (104, y)],
            colour.stroke_width(3),
        ))?;
        legend_area.draw(&Text::new(
            legend,
            (112, y),
            ("sans-serif", 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// Where a latency sits on the x axis.
fn log(us: f64) -> f64 {
    us.log10()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_file_has_a_line_and_a_legend_entry_per_series_with_samples() {
        let dir = std::env::temp_dir().join(format!("nexus-plot-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cdf.svg");
        let series = [
            LatencySeries::new("actor", (1..=500).map(Duration::from_micros).collect()),
            LatencySeries::new("optimistic", (1..=50).map(Duration::from_millis).collect()),
            LatencySeries::new("idle", Vec::new()),
        ];
        write_latency_cdfs(&path, "seat bake-off", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("seat bake-off"));
        assert!(svg.contains("actor  (p50 250 µs, p99 495 µs)"));
        assert!(svg.contains("p99\n</text>"));
        assert!(svg.contains("optimistic  (p50 25 ms, p99 50 ms)"));
        assert!(!svg.contains("idle"));
        // Two curves in their own colours, each a line and a legend mark;
        // no third colour for the series without samples.
        assert_eq!(svg.matches("stroke=\"#1F77B4\"").count(), 2);
        assert_eq!(svg.matches("stroke=\"#D62728\"").count(), 2);
        assert!(!svg.contains("#2CA02C"));
        // The axis spans the decades of the samples: 1 µs to 100 ms.
        assert!(svg.contains("\n1 µs\n") && svg.contains("\n100 ms\n"));
        assert!(svg.contains("latency (log scale)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
