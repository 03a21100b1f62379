# Plots of the customer-application tables (README "Customer applications"):
#   gnuplot jobs/results/apps_plots.gp   (from the repository root)
# Inputs: jobs/results/recommend_table.csv (docs/recommend.md, LightGCN on MovieLens, 30 rounds)
# and jobs/results/retail_auc.csv (docs/retail.md, test ROC-AUC, 5 seeds).
set datafile separator ","
set terminal pngcairo size 820,460 font ",11" noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set grid ytics
set xtics noenhanced rotate by -20
set output "jobs/results/recommend_ndcg.png"
set title "LightGCN on MovieLens: federated (users split over enterprises) vs centralized"
set ylabel "@10 on held-out ratings"
set yrange [0:0.1]
plot "jobs/results/recommend_table.csv" every ::1 using 3:xtic(1) title "R@10", "" every ::1 using 4 title "F1@10", \
     "" every ::1 using 5 title "NDCG@10"
set output "jobs/results/retail_auc.png"
set title "High-spend / caravan-policy ROC-AUC, FedAvg 30 rounds, mean of 5 seeds"
set ylabel "test ROC-AUC"
set yrange [0.6:0.95]
plot "jobs/results/retail_auc.csv" every ::1 using 2:xtic(1) title "attention on item sets", \
     "" every ::1 using 3 title "logistic regression on multi-hot"
