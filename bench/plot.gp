# Figure 2: throughput and mean latency of 1 KiB writes against the number
# of connections, every system on one plot: the median of the interleaved
# rounds, bars from their min to their max. report.sh sets datafile (per
# system: connections, req/s median min max, mean us median min max),
# outfile, n, titles[], medium, rounds and when.
set terminal pngcairo noenhanced size 1400,680 font "DejaVu Sans,11"
set output outfile
set multiplot layout 1,2 title sprintf("1 KiB closed-loop writes, one server thread (%s; median of %s interleaved rounds, bars min-max; %s)", medium, rounds, when)
# One legend, in a row of its own below both panels, clear of the data.
set bmargin 7
set key at screen 0.5, screen 0.02 center bottom horizontal maxrows 1 width 1
set logscale x 2
set xlabel "connections"
set grid
set xrange [0.8:128]
set ylabel "throughput (thousand requests/s)"
# Throughput from 0: a ratio reads off the plot as a ratio of heights.
set yrange [0:*]
plot for [i=0:n-1] datafile index i using 1:($2/1000):($3/1000):($4/1000) with yerrorlines lw 2 pt 7 ps 0.8 title titles[i+1]
set ylabel "mean latency (us)"
unset key
set logscale y 10
set yrange [*:*]
plot for [i=0:n-1] datafile index i using 1:5:6:7 with yerrorlines lw 2 pt 7 ps 0.8 title titles[i+1]
unset multiplot
