set terminal pngcairo size 1400,1000
set output 'docs/bench-latency.png'
set datafile missing '?'
set logscale xy
set grid
set key top left
set xlabel 'offered rate (events/s)'
set ylabel 'latency (ms)'
set multiplot layout 2,2 title 'kryten-bench: latency vs offered rate (2026-12-07T03:21:30.281822+00:00, vm)'
set title 'p50'
plot 'docs/bench-latency.dat' index 0 using 1:2 with linespoints lw 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->!ping reply', \
     'docs/bench-latency.dat' index 1 using 1:2 with linespoints lw 2 lc rgb '#2ca02c' title 'raw cnats: publish->!ping reply', \
     'docs/bench-latency.dat' index 2 using 1:2 with linespoints lw 2 lc rgb '#d62728' title 'Node nats.js: publish->!ping reply', \
     'docs/bench-latency.dat' index 0 using 1:6 with linespoints dt 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->handler start', \
     'docs/bench-latency.dat' index 1 using 1:6 with linespoints dt 2 lc rgb '#2ca02c' title 'raw cnats: publish->handler start'
unset key
set title 'p90'
plot 'docs/bench-latency.dat' index 0 using 1:3 with linespoints lw 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->!ping reply', \
     'docs/bench-latency.dat' index 1 using 1:3 with linespoints lw 2 lc rgb '#2ca02c' title 'raw cnats: publish->!ping reply', \
     'docs/bench-latency.dat' index 2 using 1:3 with linespoints lw 2 lc rgb '#d62728' title 'Node nats.js: publish->!ping reply', \
     'docs/bench-latency.dat' index 0 using 1:7 with linespoints dt 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->handler start', \
     'docs/bench-latency.dat' index 1 using 1:7 with linespoints dt 2 lc rgb '#2ca02c' title 'raw cnats: publish->handler start'
set title 'p99'
plot 'docs/bench-latency.dat' index 0 using 1:4 with linespoints lw 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->!ping reply', \
     'docs/bench-latency.dat' index 1 using 1:4 with linespoints lw 2 lc rgb '#2ca02c' title 'raw cnats: publish->!ping reply', \
     'docs/bench-latency.dat' index 2 using 1:4 with linespoints lw 2 lc rgb '#d62728' title 'Node nats.js: publish->!ping reply', \
     'docs/bench-latency.dat' index 0 using 1:8 with linespoints dt 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->handler start', \
     'docs/bench-latency.dat' index 1 using 1:8 with linespoints dt 2 lc rgb '#2ca02c' title 'raw cnats: publish->handler start'
set title 'p99.9'
plot 'docs/bench-latency.dat' index 0 using 1:5 with linespoints lw 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->!ping reply', \
     'docs/bench-latency.dat' index 1 using 1:5 with linespoints lw 2 lc rgb '#2ca02c' title 'raw cnats: publish->!ping reply', \
     'docs/bench-latency.dat' index 2 using 1:5 with linespoints lw 2 lc rgb '#d62728' title 'Node nats.js: publish->!ping reply', \
     'docs/bench-latency.dat' index 0 using 1:9 with linespoints dt 2 lc rgb '#1f77b4' title 'kryten-cpp: publish->handler start', \
     'docs/bench-latency.dat' index 1 using 1:9 with linespoints dt 2 lc rgb '#2ca02c' title 'raw cnats: publish->handler start'
unset multiplot
