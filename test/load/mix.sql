-- One client's step: a charge, a refund, a top-up, a withdrawal or a
-- parking stay, chosen at random; each is one transaction.
\set w random(1, 200)
\set m random(201, 220)
\set amount random(1, 3000)
\set r random(1, 2000000000)
\set pick random(1, 10)
\if :pick <= 5
SELECT load.try(format('payext.charge(%s, payext.request_payment(%s), %s, %L)', :m, :w, :amount, 'o-' || :r));
\elif :pick <= 6
SELECT load.try(format('payext.refund(%s, %L, 1, %L)', p.merchant, p.order_ref, 'rf-' || :r))
  FROM payext.payment p WHERE p.wallet = :w ORDER BY p.transfer_id DESC LIMIT 1;
\elif :pick <= 7
SELECT load.try(format('payext.top_up(%s, %s, %L)', :w, :amount, 'tu-' || :r));
\elif :pick <= 8
SELECT load.try(format('payext.withdraw(%s, %s, %L)', :m, :amount, 'wd-' || :r));
\else
SELECT load.try(format('payext.vehicle_entered(1, %L, now() - interval ''1 hour'')', 'LD' || :w));
SELECT load.try(format('payext.vehicle_exited(1, %L, now())', 'LD' || :w));
\endif
