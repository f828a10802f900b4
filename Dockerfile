# syntax=docker/dockerfile:1
# One image for both services: `docker run IMAGE worker` or `IMAGE gateway`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY . .
# pnpm comes through npm at the version pinned by packageManager, as in the README commands.
RUN node scripts/bootstrap.mjs install \
 && .tools/node_modules/.bin/pnpm exec turbo run build \
 && .tools/node_modules/.bin/pnpm --filter @nodebatch/cli deploy --prod --legacy /out

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out ./
USER 1000
EXPOSE 8080
ENTRYPOINT ["node", "dist/main.js"]
