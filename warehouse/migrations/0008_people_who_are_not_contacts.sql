-- People messaged without becoming contacts (the people of a recipients CSV the user chose not
-- to keep, addresses typed for a resend): they are rows of `contacts`, so a message still has
-- its person (names for personalising, the lookup, the details page), but they are not listed:
-- "All contacts", the contact search and the contacts count leave them out. Importing them as
-- contacts later makes them listed.
ALTER TABLE contacts ADD COLUMN is_listed BOOLEAN NOT NULL DEFAULT true;
