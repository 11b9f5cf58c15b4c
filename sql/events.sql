-- Events: the LISTEN channel of a merchant account.  LISTEN needs no
-- privilege, so the channel's name is a keyed hash: the merchant's own,
-- stable, another merchant's different, handed only to roles that may act
-- for the account.  Asking for it starts the announcements.  (What is
-- announced, to a real listener: test/events/run.sh.)

-- Ids in this file's messages start after 11000, whatever ran before it.
SELECT setval('payext.account_id_seq', 11000);

SELECT payext.open_wallet('ev_bea') AS w \gset
SELECT payext.open_merchant('gh_ev_bakery', 'Bakery') AS m \gset
SELECT payext.open_merchant('gh_ev_florist', 'Florist') AS m2 \gset

SELECT count(*) AS listening_before FROM payext.event_subscription WHERE merchant = :m;
SELECT payext.event_channel(:m) AS ch \gset
SELECT :'ch' ~ '^payext_events_[0-9a-f]{32}$' AS keyed_name,
       octet_length(:'ch') < 64 AS fits_a_channel_name,
       payext.event_channel(:m) = :'ch' AS stable,
       payext.event_channel(:m2) <> :'ch' AS one_per_merchant;
SELECT merchant = :m AS listening FROM payext.event_subscription WHERE merchant = :m;
-- The name reveals neither the merchant's id nor a consumer's pseudonym.
SELECT position(:'m'::text IN :'ch') = 0 AS no_id_inside,
       substr(:'ch', 15) <> payext.pseudonym(:'m'::text) AS not_a_pseudonym,
       substr(:'ch', 15) <> payext.pseudonym('payext event channel of merchant account ' || :'m')
         AS not_a_pseudonym_of_its_own_words;

-- Refusals.
SELECT payext.event_channel(NULL);
\echo :SQLSTATE
SELECT payext.event_channel(:w);
\echo :SQLSTATE
SELECT payext.event_channel(-1);
\echo :SQLSTATE

-- A till learns only the channels of the accounts it is mapped to.
CREATE ROLE ev_till;
SELECT payext.grant_capability('merchant', 'ev_till');
SELECT payext.map_merchant_role('ev_till', :m);
SET ROLE ev_till;
SELECT payext.event_channel(:m) = :'ch' AS own_channel;
SELECT payext.event_channel(:m2);
\echo :SQLSTATE
SELECT payext.event_channel_name(:m2);
\echo :SQLSTATE
RESET ROLE;
SELECT payext.unmap_merchant_role('ev_till', :m);
SELECT payext.revoke_capability('merchant', 'ev_till');
DROP ROLE ev_till;
