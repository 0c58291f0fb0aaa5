# Figure 2: throughput and mean latency of 1 KiB writes against the number
# of connections, every system on one plot. report.sh sets datafile,
# outfile, n, titles[] and medium.
set terminal pngcairo noenhanced size 1400,560 font "DejaVu Sans,11"
set output outfile
set multiplot layout 1,2 title sprintf("1 KiB closed-loop writes, one server thread (%s)", medium)
set logscale x 2
set xlabel "connections"
set grid
set key top left
set xrange [0.8:128]
set ylabel "throughput (thousand requests/s)"
plot for [i=0:n-1] datafile index i using 1:($2/1000) with linespoints lw 2 title titles[i+1]
set ylabel "mean latency (us)"
set logscale y 10
plot for [i=0:n-1] datafile index i using 1:3 with linespoints lw 2 title titles[i+1]
unset multiplot
